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

    def tracker(self, report: Report, total: int) -> Report:
        """A progress callback that records each finished step here, then calls ``report`` with the result and its
        ``progress``: (steps finished in this run, the ``total`` it will attempt), so a log shows how far it got."""

        def track(step: Step, result: dict[str, Any]) -> None:
            if result["ok"]:
                self.ran.append(step.name)
            else:
                self.failed[step.name] = result["error"]
            report(step, {**result, "progress": (len(self.ran) + len(self.failed), total)})

        return track


def _quiet(step: Step, result: dict[str, Any]) -> None:
    """Default progress callback: say nothing."""


def run_study(study: StudySpec | str | Path, run_dir: str | Path, executor: Any = None,
              kinds: str = DEFAULT_KINDS, report: Report = _quiet, only: str | None = None,
              device: str | None = None) -> RunSummary:
    """Run (or resume) a study into ``run_dir``; steps already done with the same key are reused. ``only`` names a
    step: run just it and the steps it depends on (`safepeft repair auto` runs its `select` step). ``device``
    runs every step there (the executor's device; no step key changes, so finished steps are reused)."""
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
    if device is not None:
        executor.device = device
    if hasattr(executor, "resources"):
        executor.resources = _resources(spec, dag, registry, executor.resources)
    state = StudyState(run_dir)
    try:
        done = {n: state.outputs(s) for n, s in dag.steps.items() if state.is_done(s)}
        summary = RunSummary(run_dir=run_dir, reused=sorted(done))
        wanted = set(dag.steps) if only is None else {only} | dag.upstream(only)
        pending = [n for n in dag.steps if n not in done and n in wanted]
        scheduler = Scheduler(dag, pending, done)
        executor.run(scheduler, state, kinds, spec.retries, summary.tracker(report, len(pending)))
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
            entries.append(ManifestEntry(name=plan.name, results=state.outputs(step)["artifact"], base=plan.base))
    if not entries:
        return None
    write_manifest(run_dir, entries)
    link_variants(run_dir, entries)
    efficacy = efficacy_results(run_dir, dag, state, spec)
    if efficacy is not None:
        atomic_write_text(run_dir / EFFICACY, efficacy.model_dump_json(indent=2))
    return write_report([run_dir], run_dir / REPORT, title=title)


LINKS = "variants"


def link_name(variant: str) -> str:
    """A variant name as one file name: `smollm2/lora+safelora` -> `smollm2__lora+safelora`."""
    return variant.replace("/", "__")


def link_variants(run_dir: Path, entries: list[Any]) -> None:
    """RUN_DIR/variants/<variant name> -> the audit step directory of that variant (results.json and its store), so
    a person finds a variant without the hash folders. Rebuilt on every publish; where the file system has no
    symbolic links nothing is linked (variants.json names every directory anyway)."""
    import os

    folder = run_dir / LINKS
    folder.mkdir(exist_ok=True)
    wanted = {link_name(e.name): (run_dir / e.results).parent for e in entries}
    for link in folder.iterdir():
        if link.is_symlink() and link.name not in wanted:
            link.unlink()
    for name, target in wanted.items():
        link = folder / name
        relative = os.path.relpath(target, folder)
        if link.is_symlink() and os.readlink(link) == relative:
            continue
        try:
            if link.is_symlink():
                link.unlink()
            link.symlink_to(relative, target_is_directory=True)
        except OSError:
            return


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
               report: Report = _quiet, device: str | None = None) -> RunSummary:
    """Run one step again (typically a failed one) on its recorded inputs; its dependencies must be done.
    ``device`` as in ``run_study``."""
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
        outputs = {d: state.outputs(dag.steps[d]) for d in step.deps.values()}
        summary = RunSummary(run_dir=run_dir)
        scheduler = Scheduler(dag, [name], outputs)
        retries = data["spec"].get("retries", 1)
        executor = executor or LocalExecutor()
        if device is not None:
            executor.device = device
        executor.run(scheduler, state, kinds, retries, summary.tracker(report, 1))
        summary.report = publish(run_dir, dag, state, data["spec"]["name"], data["spec"])
        return summary
    finally:
        state.close()


def study_plan(study: StudySpec, run_dir: str | Path) -> dict[str, Any]:
    """What `study run` would do, without running anything: every step with its status in ``run_dir`` (done steps
    are reused) and an estimate of the remaining seconds from the median time of the run directory's finished steps
    of the same kind (kinds with no finished step yet have no estimate: there is nothing measured to go by)."""
    from statistics import median

    dag = expand(study)
    run_dir = Path(run_dir)
    done: set[str] = set()
    seconds: dict[str, list[float]] = {}
    if (run_dir / "study.json").is_file():  # never create a run directory just to plan
        _, previous = read_plan(run_dir)  # timings come from the last run's steps, whatever changed since
        state = StudyState(run_dir)
        try:
            done = {name for name, step in dag.steps.items() if state.is_done(step)}
            for step in previous.steps.values():
                record = state.get(step)
                if record and record.status == "done" and record.started and record.finished:
                    seconds.setdefault(step.kind, []).append(record.finished - record.started)
        finally:
            state.close()
    typical = {kind: median(values) for kind, values in seconds.items()}
    steps: list[dict[str, Any]] = [{"step": name, "kind": step.kind, "cached": name in done,
              "estimate_s": None if name in done else typical.get(step.kind)} for name, step in dag.steps.items()]
    todo = [s for s in steps if not s["cached"]]
    return {"steps": steps, "variants": [v.name for v in dag.variants], "skipped": dag.skipped,
            "todo": len(todo), "cached": len(done),
            "estimate_s": round(sum(s["estimate_s"] or 0.0 for s in todo), 1),
            "unestimated_kinds": sorted({s["kind"] for s in todo if s["estimate_s"] is None})}
