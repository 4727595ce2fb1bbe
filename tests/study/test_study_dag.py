"""DAG expansion: content keys, subtrees, variant bases, skipped combinations."""

from study_helpers import doubles_study

from safepeft.study.dag import expand, input_identity
from safepeft.study.spec import parse_study


def _dag(**overrides):
    return expand(parse_study(doubles_study(**overrides)))


def test_keys_are_stable_and_names_are_not_part_of_them():
    first, second = _dag(), _dag()
    assert {n: s.key for n, s in first.steps.items()} == {n: s.key for n, s in second.steps.items()}
    renamed = doubles_study()
    renamed["finetune"][0]["name"] = "adapter"
    keys = {s.key for s in expand(parse_study(renamed)).steps.values()}
    assert keys == {s.key for s in first.steps.values()}


def test_changing_one_hyper_parameter_changes_exactly_its_subtree():
    before = _dag()
    study = doubles_study()
    study["finetune"][0]["grid"] = {"rank": [4, 16]}  # rank 8 -> 16: only that variant's subtree changes
    after = expand(parse_study(study))
    changed = {s.key for s in after.steps.values()} - {s.key for s in before.steps.values()}
    subtree = {"train/m/lora[rank=16]"} | after.downstream("train/m/lora[rank=16]")
    assert changed == {after.steps[n].key for n in subtree}
    assert all(n.startswith(("train/m/lora[rank=16]", "repair/m/lora[rank=16]", "quantize/m/lora[rank=16]",
                             "audit/m/lora[rank=16]")) for n in subtree)


def test_variant_bases_are_one_step_up():
    bases = {v.name: v.base for v in _dag().variants}
    assert bases["m"] is None and bases["m+aligned"] == "m"
    assert bases["m/lora[rank=4]"] == "m+aligned"
    assert bases["m/lora[rank=4]+safelora"] == "m/lora[rank=4]"
    assert bases["m/lora[rank=4]+int8-dynamic"] == "m/lora[rank=4]"
    assert bases["m/lora[rank=4]+int8-dynamic+refusal-classifier"] == "m/lora[rank=4]+int8-dynamic"
    assert "m+int8-dynamic" not in bases  # quantization applies to fine-tuned and repaired variants by default


def test_dependencies_come_first_and_repairs_need_lora_and_a_reference():
    dag = _dag(finetune=[{"name": "ia3", "method": "ia3", "data": "d"}])
    order = list(dag.steps)
    for step in dag.steps.values():
        assert all(order.index(dep) < order.index(step.name) for dep in step.deps.values())
    assert dag.skipped == ["m/ia3+safelora: repairs edit LoRA adapters, not ia3"]
    no_reference = _dag(models=[{"name": "m", "model": "embedded"}])
    assert "has no aligned reference" in no_reference.skipped[0]


def test_input_identity_follows_file_content(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    first = input_identity(str(data))
    data.write_text('{"prompt": "a", "response": "c"}\n')
    assert input_identity(str(data)) != first and first.startswith("file:")
    assert input_identity("builtin:arithmetic") == "spec:builtin:arithmetic"
    assert input_identity("embedded").startswith("file:")  # the packaged GGUF's hash
