"""Which fine-tunes a study repairs: every LoRA writer (the registry's `writes`, SaLoRA's portable LoRA included),
or the entries a repair's `finetunes` names; the built-in studies repair exactly the fine-tunes they list (#17)."""

from __future__ import annotations

import pytest
from study_helpers import doubles_study

from safepeft.errors import ConfigError
from safepeft.finetune import FINETUNE_METHODS
from safepeft.study.builtin import BUILTIN_STUDIES, builtin_study
from safepeft.study.dag import expand, writes_lora
from safepeft.study.spec import parse_study


def _repaired_variants(dag) -> set[str]:
    """Fine-tune variants that have a repair step (`repair/<model>/<variant>+<label>`)."""
    return {name.removeprefix("repair/").rpartition("+")[0] for name in dag.steps if name.startswith("repair/")}


def test_lora_writers_come_from_the_registry():
    assert {name for name in FINETUNE_METHODS.names() if writes_lora(name)} == {"lora", "salora"}
    assert all(writes_lora(n) == (FINETUNE_METHODS.get(n).writes == "LORA") for n in FINETUNE_METHODS.names())


def test_salora_is_repaired_and_ia3_is_skipped():
    finetune = [{"name": "sa", "method": "salora", "data": "d"}, {"name": "ia", "method": "ia3", "data": "d"}]
    dag = expand(parse_study(doubles_study(finetune=finetune)))
    assert _repaired_variants(dag) == {"m/sa"}
    assert "repair/m/sa+safelora" in dag.steps and "repair/m/ia+safelora" not in dag.steps
    assert dag.skipped == ["m/ia+safelora: repairs edit LoRA adapters, not ia3"]


def test_a_repair_limited_to_named_finetunes_repairs_only_those():
    finetune = [{"name": "sa", "method": "salora", "data": "d"}, {"name": "lo", "method": "lora", "data": "d"}]
    repairs = [{"method": "safelora", "finetunes": ["lo"]}, {"method": "splora"}]
    dag = expand(parse_study(doubles_study(finetune=finetune, repairs=repairs)))
    repairs_done = {n for n in dag.steps if n.startswith("repair/")}
    assert repairs_done == {"repair/m/lo+safelora", "repair/m/lo+splora", "repair/m/sa+splora"}
    assert dag.skipped == []  # a repair left out by `finetunes` is the user's choice, not an impossibility


def test_unknown_finetune_name_in_a_repair_is_a_config_error():
    with pytest.raises(ConfigError, match="names unknown finetune entries \\['nope'\\]"):
        parse_study(doubles_study(repairs=[{"method": "safelora", "finetunes": ["nope"]}]))


@pytest.mark.parametrize("name", BUILTIN_STUDIES.names())
def test_builtin_studies_repair_exactly_the_finetunes_they_list(name):
    """SaLoRA became repairable; the built-ins must not grow: each repairs only its LoRA fine-tunes, and every
    repair applies to all of them (the steps they had before #17)."""
    spec = builtin_study(name)
    lora_entries = {e.name for e in spec.finetune if e.method == "lora"}
    assert lora_entries and all(set(r.finetunes or ()) == lora_entries for r in spec.repairs)
    expected = {f"{m.name}/{v}" for m in spec.models for e in spec.finetune if e.name in lora_entries
                for v, _ in e.expand()}
    dag = expand(spec)
    assert _repaired_variants(dag) == expected
    per_variant = len([n for n in dag.steps if n.startswith("repair/")]) / len(expected)
    assert per_variant == sum(len(r.expand()) for r in spec.repairs)
    assert not any(v.name.startswith(tuple(f"{m.name}/salora" for m in spec.models)) and v.target == "repaired"
                   for v in dag.variants)


def test_salora_output_is_repaired_as_the_lora_it_writes(tmp_path, tiny_tokenizer):
    """What the DAG now plans runs: SafeLoRA projects SaLoRA's portable rank-2r LoRA (the study's repair step)."""
    import json

    import torch

    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec, train
    from safepeft.models.loader import load_model
    from safepeft.models.tiny import save_tiny_model, tiny_llama
    from safepeft.repair.adapter import load_lora_adapter
    from safepeft.repair.run import repair_adapter

    base = save_tiny_model(tmp_path / "base", initializer_range=0.5)
    aligned_model = tiny_llama(0, initializer_range=0.5)
    with torch.no_grad():  # an "alignment" delta on every weight matrix
        gen = torch.Generator().manual_seed(1)
        for param in aligned_model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    aligned_model.save_pretrained(tmp_path / "aligned")
    tiny_tokenizer.save_pretrained(tmp_path / "aligned")
    loaded = load_model(str(tmp_path / "aligned"))
    rows = [{"prompt": "hi", "response": "hello!"}, {"prompt": "2+2?", "response": "4."},
            {"prompt": "sky?", "response": "blue."}, {"prompt": "name?", "response": "Tiny."}]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = load_train_data(DataSpec(source=str(tmp_path / "chat.jsonl")), loaded.tokenizer, max_length=128)
    method = FINETUNE_METHODS.get("salora")
    options = {"safety_samples": 8, "task_samples": 4, "reply_tokens": 4, "safety_rank": 4, "task_rank": 4, "rank": 2}
    result = train(loaded, data, TrainSpec(method="salora", max_steps=3, batch_size=4), method.make_spec(**options),
                   tmp_path / "salora", show_progress=False)
    report = repair_adapter("safelora", base=str(base), aligned=str(tmp_path / "aligned"), adapter=result.out_dir,
                            out=tmp_path / "repaired", spec={"mode": "number", "k": 1.0}, progress=False)
    adapter = load_lora_adapter(result.out_dir)
    assert {m.name for m in report.modules} == set(adapter.modules) and len(adapter.modules) > 0
    assert all(module.rank == 4 for module in adapter.modules.values())  # SaLoRA's rank 2 -> portable rank 2r
    assert all(m.action == "projected" for m in report.modules)
