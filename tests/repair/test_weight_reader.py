"""models.weights: one tensor at a time from single-file and sharded safetensors dirs, name resolution, no pickles."""

import pytest
import torch

from safepeft.errors import IncompatibleArtifactError, ModelLoadError
from safepeft.models.weights import DictWeights, open_weights


def test_single_file_dir_streams_tensors(tiny_llama, tmp_path):
    model = tiny_llama(num_hidden_layers=2)
    model.save_pretrained(tmp_path / "m")
    state = model.state_dict()
    with open_weights(str(tmp_path / "m")) as reader:
        key = "model.layers.1.self_attn.k_proj.weight"
        assert key in reader and reader.shape(key) == (12, 36)
        assert torch.equal(reader.get(key), state[key])
        assert len(reader.fingerprint) == 16


def test_sharded_dir_uses_the_index(tiny_llama, tmp_path):
    model = tiny_llama(num_hidden_layers=3)
    model.save_pretrained(tmp_path / "m", max_shard_size="40KB")
    assert (tmp_path / "m" / "model.safetensors.index.json").is_file()
    shards = list((tmp_path / "m").glob("model-*.safetensors"))
    assert len(shards) > 1
    state = model.state_dict()
    with open_weights(str(tmp_path / "m")) as reader:
        for key in ("model.layers.0.self_attn.q_proj.weight", "model.layers.2.mlp.down_proj.weight"):
            assert torch.equal(reader.get(key), state[key])


def test_names_resolve_across_a_missing_or_extra_prefix(tmp_path):
    bare = DictWeights({"layers.0.self_attn.q_proj.weight": torch.zeros(2, 2)})
    assert bare.find("model.layers.0.self_attn.q_proj.weight") == "layers.0.self_attn.q_proj.weight"
    nested = DictWeights({"language_model.model.layers.0.mlp.up_proj.weight": torch.zeros(2, 2)})
    assert nested.find("model.layers.0.mlp.up_proj.weight") == "language_model.model.layers.0.mlp.up_proj.weight"
    ambiguous = DictWeights({"a.x.weight": torch.zeros(1), "b.x.weight": torch.zeros(1)})
    assert ambiguous.find("x.weight") is None
    with pytest.raises(IncompatibleArtifactError, match="Closest: a.x.weight"):
        ambiguous.get("a.y.weight")


def test_pickled_weights_are_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="only pickled weights.*never loads pickles"):
        open_weights(str(tmp_path))


def test_uncached_hub_model_offline_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="Could not get the weights of 'nobody/not-a-model'"):
        open_weights("nobody/not-a-model")
