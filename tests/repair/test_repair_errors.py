"""Inputs repair cannot handle fail early with a message naming what is wrong, and write nothing."""

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.weights import DictWeights
from safepeft.repair import repair_adapter


def weights(directory):
    return load_file(directory / "model.safetensors")


def run(triple, out, base=None, aligned=None, adapter=None, **spec):
    return repair_adapter("safelora", base=base or str(triple.base), aligned=aligned or str(triple.aligned),
                          adapter=adapter or triple.adapter, out=out, spec=spec or {"mode": "threshold"},
                          progress=False)


def copy_adapter(triple, tmp_path, edit_config=None, edit_tensors=None):
    target = tmp_path / "adapter-copy"
    shutil.copytree(triple.adapter, target)
    if edit_config:
        config = json.loads((target / "adapter_config.json").read_text())
        edit_config(config)
        (target / "adapter_config.json").write_text(json.dumps(config))
    if edit_tensors:
        tensors = load_file(target / "adapter_model.safetensors")
        edit_tensors(tensors)
        save_file(tensors, target / "adapter_model.safetensors")
    return target


def test_shape_mismatch_between_base_and_aligned(triple, tmp_path):
    aligned = weights(triple.aligned)
    key = "model.layers.2.self_attn.v_proj.weight"
    aligned[key] = aligned[key][:-1]
    with pytest.raises(IncompatibleArtifactError, match=r"Shape mismatch for model.layers.2.self_attn.v_proj.weight"):
        run(triple, tmp_path / "out", aligned=DictWeights(aligned))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("role", ["base", "aligned"])
def test_module_missing_in_one_model(triple, tmp_path, role):
    tensors = weights(getattr(triple, role))
    del tensors["model.layers.1.self_attn.k_proj.weight"]
    expected = rf"'model.layers.1.self_attn.k_proj' has no weight in the {role}"
    with pytest.raises(IncompatibleArtifactError, match=expected):
        run(triple, tmp_path / "out", **{role: DictWeights(tensors)})


def test_dora_adapter_is_refused(triple, tmp_path):
    dora = copy_adapter(triple, tmp_path, edit_config=lambda c: c.update(use_dora=True))
    with pytest.raises(IncompatibleArtifactError, match="DoRA"):
        run(triple, tmp_path / "out", adapter=dora)


def test_dora_weights_without_the_flag_are_refused(triple, tmp_path):
    def add_magnitude(tensors):
        key = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"
        tensors[key] = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"][:, 0].clone()

    with pytest.raises(IncompatibleArtifactError, match="DoRA"):
        run(triple, tmp_path / "out", adapter=copy_adapter(triple, tmp_path, edit_tensors=add_magnitude))


def test_non_lora_adapter_is_refused(tiny_llama, tmp_path, triple):
    from peft import IA3Config, get_peft_model

    ia3 = get_peft_model(tiny_llama(num_hidden_layers=4), IA3Config(target_modules=["k_proj", "down_proj"],
                                                                    feedforward_modules=["down_proj"]))
    ia3.save_pretrained(tmp_path / "ia3")
    with pytest.raises(IncompatibleArtifactError, match=r"not a LoRA adapter \(peft_type IA3\)"):
        run(triple, tmp_path / "out", adapter=tmp_path / "ia3")


def test_adapter_for_another_architecture(triple, tmp_path):
    base, aligned = weights(triple.base), weights(triple.aligned)
    key = "model.layers.0.self_attn.q_proj.weight"
    base[key], aligned[key] = base[key][:, :30], aligned[key][:, :30]
    with pytest.raises(IncompatibleArtifactError, match=r"update for model.layers.0.self_attn.q_proj has shape"):
        run(triple, tmp_path / "out", base=DictWeights(base), aligned=DictWeights(aligned))


def test_rank_not_matching_config(triple, tmp_path):
    bad = copy_adapter(triple, tmp_path, edit_config=lambda c: c.update(r=5))
    with pytest.raises(IncompatibleArtifactError, match="declares rank 5 but lora_A has 2 rows"):
        run(triple, tmp_path / "out", adapter=bad)


def test_same_model_twice(triple, tmp_path):
    with pytest.raises(IncompatibleArtifactError, match="same weights"):
        run(triple, tmp_path / "out", base=str(triple.aligned))


def test_identical_weights_from_memory(triple, tmp_path):
    same = weights(triple.base)
    with pytest.raises(IncompatibleArtifactError, match="identical weights on every adapted module"):
        run(triple, tmp_path / "out", base=DictWeights(same), aligned=DictWeights(dict(same)))


def test_missing_files_and_pickles(triple, tmp_path):
    with pytest.raises(IncompatibleArtifactError, match="not a PEFT adapter directory"):
        run(triple, tmp_path / "out", adapter=tmp_path)
    pickled = copy_adapter(triple, tmp_path)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(IncompatibleArtifactError, match="never loads"):
        run(triple, tmp_path / "out", adapter=pickled)


def test_output_safety(triple, tmp_path):
    with pytest.raises(ConfigError, match="is the input adapter"):
        run(triple, triple.adapter)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        run(triple, existing)
    repair_adapter("safelora", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                   out=existing, spec={"mode": "threshold"}, overwrite=True, progress=False)
    assert (existing / "safepeft_repair.json").is_file() and not (existing / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_spec_values(triple, tmp_path):
    with pytest.raises(ConfigError, match="Invalid mode 'sometimes'"):
        run(triple, tmp_path / "out", mode="sometimes")
    with pytest.raises(ConfigError, match="k=50 but only 12"):
        run(triple, tmp_path / "out", mode="number", k=50)


def test_spec_of_another_method_is_refused(triple, tmp_path):
    from safepeft.repair.safelora import SafeLoRASpec

    with pytest.raises(ConfigError, match="splora needs a SPLoRASpec, got SafeLoRASpec"):
        repair_adapter("splora", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                       out=tmp_path / "out", spec=SafeLoRASpec(), progress=False)
