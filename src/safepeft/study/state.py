"""Durable study state: one row per step key in the run store (SQLite, one transaction per change), plus
``study.json`` (the expanded DAG) so `study status` and `study retry` need only the run directory.

Only the driver process writes state; Ray workers write nothing but their step directories.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from safepeft.errors import ResumeError
from safepeft.records.base import Record
from safepeft.store.atomic import atomic_write_text
from safepeft.store.sqlite import RunStore
from safepeft.study.dag import Dag, EfficacyPlan, Step, VariantPlan

NAMESPACE = "study-steps"
PLAN = "study.json"
Status = Literal["pending", "running", "interrupted", "done", "failed", "blocked"]


class StepState(Record):
    """What happened to one step (by key)."""

    name: str
    kind: str
    status: Literal["running", "done", "failed"]
    attempts: int = 0
    """Attempts so far (counted by the step itself, so Ray's retries count too)."""
    error: str | None = None
    """Last error (one line) when failed."""
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    host: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)


def step_dir(run_dir: str | Path, step: Step) -> Path:
    """Where a step works: named by kind and key, so a changed step gets a fresh directory."""
    return Path(run_dir) / "steps" / step.kind / step.key[:16]


class StudyState:
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.store = RunStore(run_dir)

    def close(self) -> None:
        self.store.close()

    def get(self, step: Step) -> StepState | None:
        value = self.store.get_record(NAMESPACE, step.key)
        return None if value is None else StepState.model_validate(value)

    def put(self, step: Step, state: StepState) -> None:
        self.store.put_record(NAMESPACE, step.key, state.model_dump(mode="json"))

    def running(self, step: Step) -> None:
        previous = self.get(step)
        self.put(step, StepState(name=step.name, kind=step.kind, status="running", started=time.time(),
                                 pid=os.getpid(), host=socket.gethostname(),
                                 attempts=previous.attempts if previous else 0))

    def done(self, step: Step, outputs: dict[str, Any], attempts: int) -> None:
        state = self.get(step) or StepState(name=step.name, kind=step.kind, status="done")
        self.put(step, state.model_copy(update={"status": "done", "outputs": outputs, "attempts": attempts,
                                                "error": None, "finished": time.time()}))

    def failed(self, step: Step, error: str, attempts: int) -> None:
        state = self.get(step) or StepState(name=step.name, kind=step.kind, status="failed")
        self.put(step, state.model_copy(update={"status": "failed", "error": error, "attempts": attempts,
                                                "finished": time.time()}))

    def is_done(self, step: Step) -> bool:
        state = self.get(step)
        return state is not None and state.status == "done" and step_dir(self.run_dir, step).is_dir()

    def outputs(self, step: Step) -> dict[str, Any]:
        """The outputs of a step that is done; callers check `is_done` first, so a ResumeError here means the state
        changed under them (another process retried the step)."""
        state = self.get(step)
        if state is None or state.status != "done":
            raise ResumeError(f"Step {step.name!r} is not done in {self.run_dir}.",
                              f"See `safepeft study status {self.run_dir}`, then run or retry the study.")
        return state.outputs

    def status(self, dag: Dag) -> dict[str, tuple[Status, StepState | None]]:
        """Status of every step: running steps whose process is gone are `interrupted`; steps below a failed
        step are `blocked`."""
        out: dict[str, tuple[Status, StepState | None]] = {}
        for name, step in dag.steps.items():
            state = self.get(step)
            status: Status = "pending" if state is None else state.status
            if status == "done" and not step_dir(self.run_dir, step).is_dir():
                status = "pending"
            if status == "running" and not _alive(state):
                status = "interrupted"
            if status == "pending" and any(out[d][0] in ("failed", "blocked") for d in step.deps.values()):
                status = "blocked"
            out[name] = (status, state)
        return out


def _alive(state: StepState | None) -> bool:
    """Is the process that marked the step running still there? (A record from another host is trusted.)"""
    if state is None or state.pid is None:
        return False
    if state.host != socket.gethostname():
        return True
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def write_plan(run_dir: str | Path, spec: dict[str, Any], dag: Dag, source: str | None) -> None:
    data = {"source": source, "spec": spec, "steps": [s.to_json() for s in dag.steps.values()],
            "variants": [v.__dict__ for v in dag.variants], "skipped": dag.skipped,
            "efficacy": [e.__dict__ for e in dag.efficacy]}
    atomic_write_text(Path(run_dir) / PLAN, json.dumps(data, indent=2, default=str) + "\n")


def read_plan(run_dir: str | Path) -> tuple[dict[str, Any], Dag]:
    path = Path(run_dir) / PLAN
    if not path.is_file():
        raise ResumeError(f"{run_dir} is not a study run directory (no {PLAN}).",
                          "Pass the directory given to `safepeft study run --out`.")
    data = json.loads(path.read_text(encoding="utf-8"))
    dag = Dag(steps={s["name"]: Step.from_json(s) for s in data["steps"]},
              variants=[VariantPlan(**v) for v in data["variants"]], skipped=data.get("skipped", []),
              efficacy=[EfficacyPlan(**e) for e in data.get("efficacy", [])])
    return data, dag
