"""Executors: the local one runs ready steps one after another in this process; the Ray one runs independent steps
as Ray tasks with declared resources. Both share the Scheduler, which knows what is ready, and record every
transition in the study state before moving on, so a kill at any point loses at most the steps in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safepeft.errors import missing_dependency
from safepeft.study.dag import STAGES, Dag, Step
from safepeft.study.execute import attempts, one_line, run_step
from safepeft.study.state import StudyState, step_dir

Report = Callable[[Step, dict[str, Any]], None]


class Scheduler:
    """Which steps may start: every dependency done. A failed step blocks what depends on it."""

    def __init__(self, dag: Dag, todo: list[str], outputs: dict[str, dict[str, Any]]) -> None:
        self.dag = dag
        self.pending = [n for n in dag.steps if n in set(todo)]
        self.outputs = dict(outputs)
        self.failed: set[str] = set()

    def ready(self) -> list[Step]:
        """Runnable steps, earlier stages first, then audits grouped by model (so one loaded base serves
        consecutive audits of its adapters)."""
        steps = [self.dag.steps[n] for n in self.pending
                 if all(d in self.outputs for d in self.dag.steps[n].deps.values())]
        return sorted(steps, key=lambda s: (STAGES.index(s.kind) if s.kind in STAGES else len(STAGES),
                                            s.deps.get("model") or s.inputs.get("model") or "", s.name))

    def start(self, step: Step) -> dict[str, dict[str, Any]]:
        self.pending.remove(step.name)
        return {role: self.outputs[name] for role, name in step.deps.items()}

    def finish(self, step: Step, result: dict[str, Any]) -> None:
        if result["ok"]:
            self.outputs[step.name] = result["outputs"]
        else:
            self.failed.add(step.name)

    def blocked(self) -> list[str]:
        return list(self.pending)


def _record(state: StudyState, step: Step, result: dict[str, Any]) -> None:
    if result["ok"]:
        state.done(step, result["outputs"], result["attempt"])
    else:
        state.failed(step, result["error"], result["attempt"])


class LocalExecutor:
    """Steps in dependency order in this process; an unexpected error is retried ``retries`` times."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        """Every step's device (``StepContext.device``); None: each step's own."""

    def run(self, scheduler: Scheduler, state: StudyState, kinds_ref: str, retries: int, report: Report) -> None:
        while ready := scheduler.ready():
            step = ready[0]
            deps = scheduler.start(step)
            state.running(step)
            for tries_left in range(retries, -1, -1):
                try:
                    result = run_step(step.to_json(), str(state.run_dir), deps, kinds_ref, self.device)
                    break
                except Exception as exc:  # noqa: BLE001 - any step failure is recorded, never fatal to the study
                    result = {"ok": False, "error": one_line(exc), "attempt": attempts(step_dir(state.run_dir, step))}
                    if not tries_left:
                        break
            _record(state, step, result)
            scheduler.finish(step, result)
            report(step, result)


class RayExecutor:
    """Independent steps as Ray tasks (``num_cpus`` / ``num_gpus`` per kind), at most ``max_parallel`` at once.

    ``address``: None starts a local Ray instance (or uses the one already initialised in this process), "auto"
    joins the cluster this machine belongs to, else a ``ray://`` or GCS address. Workers write into the run directory,
    so it must be on storage every node sees.
    """

    def __init__(self, address: str | None = None, max_parallel: int | None = None,
                 resources: dict[str, dict[str, float]] | None = None, device: str | None = None) -> None:
        self.address = address
        self.max_parallel = max_parallel
        self.resources = resources or {}
        self.device = device
        """Every step's device (``StepContext.device``), resolved on the worker; None: each step's own."""

    def run(self, scheduler: Scheduler, state: StudyState, kinds_ref: str, retries: int, report: Report) -> None:
        try:
            import ray
        except ImportError as exc:
            raise missing_dependency("ray", "The Ray executor (--ray)", "'ray>=2.9'") from exc
        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        task = ray.remote(run_step)
        in_flight: dict[Any, Step] = {}
        while True:
            for step in scheduler.ready():
                if self.max_parallel and len(in_flight) >= self.max_parallel:
                    break
                deps = scheduler.start(step)
                state.running(step)
                options = {"num_cpus": 1.0, "num_gpus": 0.0, **self.resources.get(step.kind, {})}
                ref = task.options(**options, max_retries=retries, retry_exceptions=True,
                                   name=step.name).remote(step.to_json(), str(state.run_dir), deps, kinds_ref,
                                                          self.device)
                in_flight[ref] = step
            if not in_flight:
                return
            finished, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in finished:
                step = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    result = {"ok": False, "error": one_line(cause),
                              "attempt": attempts(step_dir(state.run_dir, step))}
                _record(state, step, result)
                scheduler.finish(step, result)
                report(step, result)
