"""STUDY.yaml validation: unknown keys name their path, shorthands, grids, cross-references."""

import pytest
from study_helpers import doubles_study, write_yaml

from safepeft.errors import ConfigError
from safepeft.study.spec import load_study, parse_study


def test_unknown_keys_are_rejected_with_their_path():
    study = doubles_study()
    study["finetune"][0]["parms"] = {}
    study["models"][0]["algn"] = {}
    study["audit"]["sutes"] = []
    with pytest.raises(ConfigError) as info:
        parse_study(study, "s.yaml")
    message = str(info.value)
    assert "finetune[0].parms: unknown key (did you mean 'params'?)" in message
    assert "models[0].algn: unknown key (did you mean 'align'?)" in message
    assert "audit.sutes: unknown key" in message and message.startswith("Invalid study s.yaml")


@pytest.mark.parametrize("change, expected", [
    ({"models": []}, "models: List should have at least 1 item"),
    ({"models": [{"name": "m", "model": "x", "align": {}, "aligned": "y"}]}, "either `aligned`"),
    ({"finetune": [{"name": "a", "adapter": "dir", "method": "lora"}]}, "takes no method"),
    ({"finetune": [{"name": "a", "method": "lora"}]}, "give `method` and `data`"),
    ({"finetune": [{"name": "a b", "method": "lora", "data": "d"}]}, "not a valid name"),
    ({"finetune": [{"name": "a", "method": "lora", "data": "d", "models": ["zz"]}]}, "unknown models ['zz']"),
    ({"audit": {}}, "audit.suites: required key missing"),
    ({"resources": {"trian": {"num_gpus": 1}}}, "unknown step kinds ['trian']"),
])
def test_invalid_studies(change, expected):
    with pytest.raises(ConfigError, match=None) as info:
        parse_study(doubles_study(**change))
    assert expected in str(info.value)


def test_shorthands_and_grid(tmp_path):
    spec = load_study(write_yaml(tmp_path / "s.yaml", doubles_study()))
    assert [r.method for r in spec.repairs] == ["safelora"] and spec.quantize[0].name == "int8-dynamic"
    assert spec.guards[0].apply_to == ["finetuned", "repaired"]
    variants = spec.finetune[0].expand()
    assert variants == [("lora[rank=4]", {"max_steps": 5, "rank": 4}), ("lora[rank=8]", {"max_steps": 5, "rank": 8})]


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_study(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(tmp_path / "bad.yaml")
