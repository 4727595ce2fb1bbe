"""Contract over every registered step kind (real and doubles), and `safepeft list step-kinds`."""

import inspect

import pytest

from safepeft.study.dag import STAGES
from safepeft.study.doubles import DOUBLE_KINDS
from safepeft.study.kinds import STEP_KINDS, StepKind

ENTRIES = [("real", n) for n in STEP_KINDS.names()] + [("double", n) for n in DOUBLE_KINDS.names()]


@pytest.mark.parametrize("registry, name", ENTRIES)
def test_step_kind_contract(registry, name):
    kind = (STEP_KINDS if registry == "real" else DOUBLE_KINDS).get(name)
    assert isinstance(kind, StepKind) and name in STAGES
    assert kind.description and set(kind.resources) == {"num_cpus", "num_gpus"}
    assert list(inspect.signature(kind.run).parameters) == ["ctx"]
    assert list(inspect.signature(kind.validate).parameters) == ["step"]
    if registry == "real":
        assert kind.name == name


def test_real_kinds_validate_their_stage_parameters():
    from safepeft.errors import ConfigError, UnknownNameError
    from safepeft.study.dag import Step

    with pytest.raises(ConfigError, match=r"Unknown fine-tune option\(s\) \['rnak'\]"):
        STEP_KINDS.get("train").validate(Step("t", "train", {"method": "lora", "params": {"rnak": 4}},
                                              inputs={"data": "builtin:arithmetic"}))
    STEP_KINDS.get("train").validate(Step("t", "train", {"method": "lora", "params": {"rank": 4, "max_steps": 2,
                                                                                      "limit": 3}}))
    with pytest.raises(UnknownNameError, match="Unknown suite 'nope'"):
        STEP_KINDS.get("audit").validate(Step("a", "audit", {"audit": {"suites": ["nope"], "judge": "refusal"},
                                                             "guard": None}))
    with pytest.raises(ConfigError, match="tau"):
        STEP_KINDS.get("repair").validate(Step("r", "repair", {"method": "safelora", "params": {"tau": "x"}}))


def test_list_step_kinds():
    from typer.testing import CliRunner

    from safepeft.cli.main import app

    result = CliRunner().invoke(app, ["list", "step-kinds"])
    assert result.exit_code == 0 and all(name in result.stdout for name in STEP_KINDS.names())
