"""A study's repair step is a registry lookup for every method: it supplies the extra inputs a method declares."""

from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext
from safepeft.study.steps.repair import repair_inputs


def context(tmp_path, method):
    step = Step(f"repair/x+{method}", "repair", {"method": method, "params": {}},
                inputs={"base": "embedded", "aligned": "aligned-dir", "adapter": "adapter-dir"})
    return StepContext(step, tmp_path, tmp_path)


def test_methods_without_extra_inputs_get_none(tmp_path):
    for method in ("safelora", "splora", "resta"):
        assert repair_inputs(method, context(tmp_path, method)) is None


def test_safedelta_gets_the_builtin_safety_conversations(tmp_path):
    inputs = repair_inputs("safedelta", context(tmp_path, "safedelta"))
    chats = inputs["safety_conversations"]
    assert len(chats) > 50 and all(chat[0]["role"] == "user" and chat[-1]["role"] == "assistant" for chat in chats)
