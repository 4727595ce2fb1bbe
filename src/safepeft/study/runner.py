"""run / status / retry: expand the study, skip what is done, execute the rest, then write variants.json and the
report over every variant whose audit is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, ResumeError, UnknownNameError
from safepeft.study.dag import Dag, Step, expand
from safepeft.study.executors import LocalExecutor, Report, Scheduler
from safepeft.study.spec import StudySpec, load_study
from safepeft.study.state import StudyState, read_plan, write_plan

DEFAULT_KINDS = "safepeft.study.kinds:STEP_KINDS"
REPORT = "report.html"


@dataclass
class RunSummary:
    run_dir: Path
    reused: list[str] = field(default_factory=list)
    """Steps already done before this run (not recomputed)."""
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    report: Path | None = None
    seconds: float = 0.0

    def tracker(self, report: Report) -> Report:
        """A progress callback that records each finished step here, then calls ``report``."""

        def track(step: Step, result: dict[str, Any]) -> None:
            if result["ok"]:
                self.ran.append(step.name)
            else:
                self.failed[step.name] = result["error"]
            report(step, result)

        return track


def _quiet(step: Step, result: dict[str, Any]) -> None:
    """Default progress callback: say nothing."""


def run_study(study: StudySpec | str | Path, run_dir: str | Path, executor: Any = None,
              kinds: str = DEFAULT_KINDS, report: Report = _quiet) -> RunSummary:
    """Run (or resume) a study into ``run_dir``; steps already done with the same key are reused."""
    from safepeft.study.execute import load_kinds

    started = time.perf_counter()
    source = None if isinstance(study, StudySpec) else str(study)
    spec = study if isinstance(study, StudySpec) else load_study(study)
    dag = expand(spec)
    registry = load_kinds(kinds)
    _validate(dag, registry)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_plan(run_dir, spec.model_dump(mode="json"), dag, source)
    executor = executor or LocalExecutor()
    if hasattr(executor, "resources"):
        executor.resources = _resources(spec, dag, registry, executor.resources)
    state = StudyState(run_dir)
    try:
        done = {n: state.get(s).outputs for n, s in dag.steps.items() if state.is_done(s)}
        summary = RunSummary(run_dir=run_dir, reused=sorted(done))
        scheduler = Scheduler(dag, [n for n in dag.steps if n not in done], done)
        executor.run(scheduler, state, kinds, spec.retries, summary.tracker(report))
        summary.blocked = scheduler.blocked()
        summary.report = publish(run_dir, dag, state, spec.name, spec.model_dump(mode="json"))
    finally:
        state.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _validate(dag: Dag, registry: Any) -> None:
    """Every step's kind exists and accepts its parameters, before anything runs."""
    for step in dag.steps.values():
        if step.kind not in registry:
            raise UnknownNameError(
                f"Step {step.name!r} needs the step kind {step.kind!r}, which is not available.",
                f"Available step kinds: {', '.join(registry.names())}. Remove that part of the study.",
            )
        registry.get(step.kind).validate(step)


def _resources(spec: StudySpec, dag: Dag, registry: Any, extra: dict[str, dict[str, float]]) -> dict:
    kinds = {s.kind for s in dag.steps.values()}
    return {k: {**registry.get(k).resources, **extra.get(k, {}),
                **(spec.resources[k].model_dump() if k in spec.resources else {})} for k in kinds}


def publish(run_dir: Path, dag: Dag, state: StudyState, title: str, spec: dict[str, Any]) -> Path | None:
    """variants.json over every audited variant, efficacy.json (with an efficacy protocol), then report.html (None
    when no audit is done yet)."""
    from safepeft.report import write_report
    from safepeft.report.load import ManifestEntry, write_manifest
    from safepeft.store.atomic import atomic_write_text
    from safepeft.study.efficacy import EFFICACY, efficacy_results

    entries = []
    for plan in dag.variants:
        step = dag.steps[plan.audit]
        if state.is_done(step):
            entries.append(ManifestEntry(name=plan.name, results=state.get(step).outputs["artifact"], base=plan.base))
    if not entries:
        return None
    write_manifest(run_dir, entries)
    efficacy = efficacy_results(run_dir, dag, state, spec)
    if efficacy is not None:
        atomic_write_text(run_dir / EFFICACY, efficacy.model_dump_json(indent=2))
    return write_report([run_dir], run_dir / REPORT, title=title)


def study_status(run_dir: str | Path) -> list[dict[str, Any]]:
    """One row per step: name, kind, status, attempts, seconds, error."""
    _, dag = read_plan(run_dir)
    state = StudyState(run_dir)
    try:
        rows = []
        for name, (status, record) in state.status(dag).items():
            seconds = None
            if record and record.started and record.finished and status in ("done", "failed"):
                seconds = round(record.finished - record.started, 1)
            rows.append({"step": name, "kind": dag.steps[name].kind, "status": status,
                         "attempts": record.attempts if record else 0, "seconds": seconds,
                         "error": record.error if record and status == "failed" else None})
        return rows
    finally:
        state.close()


def retry_step(run_dir: str | Path, name: str, executor: Any = None, kinds: str = DEFAULT_KINDS,
               report: Report = _quiet) -> RunSummary:
    """Run one step again (typically a failed one) on its recorded inputs; its dependencies must be done."""
    data, dag = read_plan(run_dir)
    if name not in dag.steps:
        import difflib

        close = difflib.get_close_matches(name, list(dag.steps), n=3)
        raise ConfigError(f"No step {name!r} in this study.",
                          f"Did you mean {', '.join(map(repr, close))}?" if close else "See `safepeft study status`.")
    step = dag.steps[name]
    run_dir = Path(run_dir)
    state = StudyState(run_dir)
    try:
        missing = [d for d in step.deps.values() if not state.is_done(dag.steps[d])]
        if missing:
            raise ResumeError(f"Step {name!r} depends on {', '.join(missing)}, which is not done.",
                              "Run `safepeft study run` (or retry those steps) first.")
        outputs = {d: state.get(dag.steps[d]).outputs for d in step.deps.values()}
        summary = RunSummary(run_dir=run_dir)
        scheduler = Scheduler(dag, [name], outputs)
        retries = data["spec"].get("retries", 1)
        (executor or LocalExecutor()).run(scheduler, state, kinds, retries, summary.tracker(report))
        summary.report = publish(run_dir, dag, state, data["spec"]["name"], data["spec"])
        return summary
    finally:
        state.close()
