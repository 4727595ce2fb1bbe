"""`safepeft repair auto`: score every registered repair (each over its main hyper-parameter) on a validation split
and write the candidate with the highest recovery among those that keep at least ``min_utility_kept`` of the
adapter's utility.

It is the efficacy protocol's `select` step run on its own: a small study of one given adapter whose repairs are
the protocol's grid, run only up to the `+auto` choice (no test audits). The run directory next to the output keeps
every candidate and its validation audit, so a re-run resumes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError
from safepeft.records.efficacy import Choice

CHOICE = "repair_choice.json"


@dataclass
class AutoResult:
    out: Path
    choice: Choice
    run_dir: Path


def auto_study(base: str, aligned: str, adapter: str, methods: list[str] | None, safety_suites: list[str],
               utility_suites: list[str], limit: int, min_utility_kept: float, max_new_tokens: int,
               judge: str) -> dict[str, Any]:
    """The study `repair auto` runs (a dict as a user would write it)."""
    from safepeft.repair import REPAIR_METHODS
    from safepeft.study.builtin import REPAIR_GRID

    grid = [entry for entry in REPAIR_GRID if methods is None or entry["method"] in methods]
    unknown = sorted(set(methods or []) - {e["method"] for e in REPAIR_GRID})
    if unknown:
        raise ConfigError(f"Unknown repair method(s) {', '.join(unknown)} for --methods.",
                          f"Choose from {', '.join(REPAIR_METHODS.names())}.")
    if not utility_suites:
        raise ConfigError("repair auto needs a utility suite to measure what the repair keeps.",
                          "Pass --utility-suite (e.g. arithmetic:150, gsm8k:PATH).")
    return {
        "name": "repair-auto",
        "models": [{"name": "model", "model": base, "aligned": aligned}],
        "finetune": [{"name": "adapter", "adapter": adapter}],
        "repairs": grid,
        # every item chooses: auto runs no test audit
        "efficacy": {"validation_share": 1.0, "validation_limit": limit, "min_utility_kept": min_utility_kept},
        "audit": {"suites": [*safety_suites, *utility_suites], "max_new_tokens": max_new_tokens, "judge": judge,
                  "batch_size": 32},
    }


def repair_auto(base: str, aligned: str, adapter: str | Path, out: str | Path, *, methods: list[str] | None = None,
                safety_suites: tuple[str, ...] = ("builtin",), utility_suites: tuple[str, ...] = ("arithmetic:150",),
                limit: int = 60, min_utility_kept: float = 0.95, max_new_tokens: int = 48,
                judge: str = "classifier", overwrite: bool = False, report: Any = None,
                device: str | None = None) -> AutoResult:
    """Choose and write the repair (see the module docstring); ``out`` gets the chosen adapter (or model) and
    repair_choice.json."""
    from safepeft.store.atomic import atomic_dir
    from safepeft.study import run_study
    from safepeft.study.dag import expand
    from safepeft.study.spec import parse_study

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out} already exists and is not empty.", "Pass --overwrite or another --out.")
    spec = parse_study(auto_study(base, aligned, str(adapter), methods, list(safety_suites), list(utility_suites),
                                  limit, min_utility_kept, max_new_tokens, judge), "repair auto")
    dag = expand(spec)
    if not dag.efficacy:
        raise ConfigError("No repair candidate to choose from.", "Pass --methods with at least one method.")
    target = dag.efficacy[-1].select  # `+auto` when several methods, else the one method's choice
    run_dir = out.parent / f"{out.name}.auto-run"
    summary = run_study(spec, run_dir, only=target, device=device, **({"report": report} if report else {}))
    if summary.failed:
        name, error = next(iter(summary.failed.items()))
        raise ConfigError(f"repair auto: step {name} failed: {error}",
                          f"See `safepeft study status {run_dir}`; re-run to resume.")
    from safepeft.study.state import StudyState

    state = StudyState(run_dir)
    try:
        outputs = state.outputs(dag.steps[target])
    finally:
        state.close()
    choice = Choice.model_validate_json((run_dir / outputs["choice"]).read_text(encoding="utf-8"))
    with atomic_dir(out) as tmp:
        shutil.copytree(run_dir / outputs["artifact"], tmp, dirs_exist_ok=True)
        (tmp / CHOICE).write_text(choice.model_dump_json(indent=2), encoding="utf-8")
    return AutoResult(out, choice, run_dir)
