"""SafeLoRA end to end on tiny saved models: selection of constructed modules, drop-in output, no double pass."""

import json

import torch
from safetensors.torch import load_file

from safepeft.models.weights import open_weights
from safepeft.repair import repair_adapter
from safepeft.repair.adapter import load_lora_adapter


def _dense_cb(triple, name):
    """C·B from pristine weights, computed the official dense way."""
    key = f"{name}.weight"
    with open_weights(str(triple.base)) as base, open_weights(str(triple.aligned)) as aligned:
        v = (aligned.get(key) - base.get(key)).double()
    b = load_lora_adapter(triple.adapter).b(name).double()
    return (v @ v.T / torch.linalg.matrix_norm(v)) @ b


def test_threshold_projects_exactly_the_misaligned_modules(triple, tmp_path):
    report = repair_adapter("safelora", base=str(triple.base), aligned=str(triple.aligned),
                            adapter=triple.adapter, out=tmp_path / "out", spec={"mode": "threshold", "tau": 0.5},
                            progress=False)
    projected = {m.name for m in report.modules if m.action == "projected"}
    assert projected == triple.misaligned
    scores = {m.name: m.score for m in report.modules}
    assert all(scores[n] < 0.01 for n in triple.misaligned)
    assert all(scores[n] > 0.99 for n in set(triple.modules) - triple.misaligned)
    saved = json.loads((tmp_path / "out" / "safepeft_repair.json").read_text())
    assert saved["method"] == "safelora" and saved["params"]["tau"] == 0.5
    assert saved["summary"]["pdst"] is not None and len(saved["modules"]) == len(triple.modules)


def test_number_mode_scores_pristine_weights_once(triple, tmp_path):
    """k=1 although 3 modules score below 0.5 (the PEFT port's first pass would project all 3): only the lowest
    changes, every other B stays bit-identical, and the projected B is C·B_orig from pristine weights."""
    report = repair_adapter("safelora", base=str(triple.base), aligned=str(triple.aligned),
                            adapter=triple.adapter, out=tmp_path / "out", spec={"mode": "number", "k": 1},
                            progress=False)
    ranked = sorted((m.score, m.name) for m in report.modules)
    assert sum(score <= 0.5 for score, _ in ranked) == 3
    [chosen] = [m.name for m in report.modules if m.action == "projected"]
    assert chosen == ranked[0][1]
    before, after = load_lora_adapter(triple.adapter), load_lora_adapter(tmp_path / "out")
    for name in triple.modules:
        assert torch.equal(before.a(name), after.a(name))
        if name != chosen:
            assert torch.equal(before.b(name), after.b(name))
    torch.testing.assert_close(after.b(chosen).double(), _dense_cb(triple, chosen), rtol=1e-5, atol=1e-6)


def test_output_is_a_drop_in_peft_adapter(triple, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    repair_adapter("safelora", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                   out=tmp_path / "out", spec={"mode": "number", "k": 3}, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "safepeft_repair.json"]
    before = load_file(triple.adapter / "adapter_model.safetensors")
    after = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert all(after[k].shape == before[k].shape and after[k].dtype == before[k].dtype for k in before)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(triple.aligned), tmp_path / "out")
    layer = model.base_model.model.model.layers[3].self_attn.q_proj
    repaired = load_lora_adapter(tmp_path / "out")
    assert torch.equal(layer.lora_B["default"].weight, repaired.b("model.layers.3.self_attn.q_proj"))
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[5, 6, 7]])).logits).all()


def test_bf16_adapter_stays_bf16(triple, tmp_path):
    from safetensors.torch import save_file

    source = tmp_path / "bf16"
    source.mkdir()
    (source / "adapter_config.json").write_text((triple.adapter / "adapter_config.json").read_text())
    tensors = load_file(triple.adapter / "adapter_model.safetensors")
    save_file({k: v.bfloat16() for k, v in tensors.items()}, source / "adapter_model.safetensors")
    report = repair_adapter("safelora", base=str(triple.base), aligned=str(triple.aligned), adapter=source,
                            out=tmp_path / "out", spec={"mode": "threshold"}, progress=False)
    assert {m.name for m in report.modules if m.action == "projected"} == triple.misaligned
    assert all(t.dtype == torch.bfloat16 for t in load_file(tmp_path / "out" / "adapter_model.safetensors").values())
