"""Running one step, in whatever process an executor chose (the driver, or a Ray worker).

A ``SafepeftError`` (bad configuration or data) is returned as a failure: retrying cannot fix it. Any other exception
propagates, so the executor retries the step (a worker lost, an out-of-memory, a flaky download). The attempt count
lives in the step directory, so it also counts the attempts Ray makes on its own.
"""

from __future__ import annotations

import importlib
import time
import traceback
from pathlib import Path
from typing import Any

from safepeft import progress
from safepeft.errors import SafepeftError
from safepeft.registry import Registry
from safepeft.store.atomic import atomic_write_text
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext
from safepeft.study.state import step_dir

ATTEMPTS = ".attempts"
ERROR_LOG = "error.log"


def load_kinds(ref: str) -> Registry:
    """The step-kind registry named by ``"module:attr"`` (workers import it by name)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def attempts(out_dir: Path) -> int:
    try:
        return int((out_dir / ATTEMPTS).read_text())
    except (OSError, ValueError):
        return 0


def run_step(step_json: dict[str, Any], run_dir: str, dep_outputs: dict[str, dict[str, Any]],
             kinds_ref: str, device: str | None = None) -> dict[str, Any]:
    """Run one step here: {"ok", "outputs" or "error", "attempt", "seconds"} (plain data, so Ray can ship it).
    ``device`` overrides every step's device (``StepContext.device``)."""
    step = Step.from_json(step_json)
    out_dir = step_dir(run_dir, step)
    out_dir.mkdir(parents=True, exist_ok=True)
    attempt = attempts(out_dir) + 1
    atomic_write_text(out_dir / ATTEMPTS, str(attempt))
    kind = load_kinds(kinds_ref).get(step.kind)
    ctx = StepContext(step=step, run_dir=Path(run_dir), out_dir=out_dir, dep_outputs=dep_outputs, attempt=attempt,
                      device=device)
    started = time.perf_counter()
    try:
        with progress.scope(step.name):  # the step's bars (plain timed lines without a terminal) name the step
            outputs = kind.run(ctx)
    except SafepeftError as exc:
        _log_error(out_dir)
        return {"ok": False, "error": exc.render(), "attempt": attempt,
                "seconds": time.perf_counter() - started}
    except BaseException:
        _log_error(out_dir)
        raise
    (out_dir / ERROR_LOG).unlink(missing_ok=True)
    return {"ok": True, "outputs": outputs, "attempt": attempt, "seconds": time.perf_counter() - started}


def _log_error(out_dir: Path) -> None:
    atomic_write_text(out_dir / ERROR_LOG, traceback.format_exc())


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception (the traceback is in the step's error.log)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]
