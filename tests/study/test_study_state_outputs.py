"""`StudyState.outputs`: a done step's outputs, or one line saying the step is not done."""

from __future__ import annotations

import pytest

from safepeft.errors import ResumeError
from safepeft.study.dag import Step
from safepeft.study.state import StudyState


def test_outputs_of_a_done_step_and_a_resume_error_for_the_others(tmp_path):
    done, running = Step("train/a", "train", {}, key="k1"), Step("train/b", "train", {}, key="k2")
    state = StudyState(tmp_path)
    try:
        state.done(done, {"artifact": "steps/train/k1/adapter"}, attempts=1)
        state.running(running)
        assert state.outputs(done) == {"artifact": "steps/train/k1/adapter"}
        for step in (running, Step("train/c", "train", {}, key="k3")):
            with pytest.raises(ResumeError, match=f"Step '{step.name}' is not done"):
                state.outputs(step)
    finally:
        state.close()
