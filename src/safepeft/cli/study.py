"""`safepeft study run|status|retry`: run a STUDY.yaml locally or on Ray, resumably, and inspect or retry steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from safepeft.cli import options
from safepeft.errors import ConfigError

KINDS = typer.Option("safepeft.study.kinds:STEP_KINDS", "--kinds", hidden=True,
                     help="Step-kind registry as module:attr (plugins, tests).")
RAY = typer.Option(None, "--ray", help="Run on Ray: `auto` (this machine's cluster), `local` (start one here) or "
                   "an address (ray://HOST:10001).")
MAX_PARALLEL = typer.Option(None, "--max-parallel", min=1, help="At most N steps at once (Ray).")
STYLE = {"done": "green", "failed": "red", "running": "yellow", "interrupted": "yellow", "blocked": "magenta",
         "pending": "dim"}

app = typer.Typer(help="Run many variants from one YAML: train, repair, quantize, guard, audit, report.",
                  no_args_is_help=True)


def step_device(device: str, ray: str | None = None) -> str | None:
    """The device override of every step (None for auto: each step's own device, the study's `target.device` for
    audits). A device this machine lacks fails here, before any step runs (on Ray the workers check it)."""
    if device == "auto":
        return None
    if ray is None:
        from safepeft.models.weights import resolve_device

        resolve_device(device)
    return device


def _executor(ray: str | None, max_parallel: int | None) -> Any:
    if ray is None:
        if max_parallel not in (None, 1):
            raise ConfigError("--max-parallel needs --ray.", "The local executor runs one step at a time.")
        return None
    from safepeft.study.executors import RayExecutor

    return RayExecutor(address=None if ray == "local" else ray, max_parallel=max_parallel)


def _printer(console: Console):
    def report(step, result: dict[str, Any]) -> None:
        done, total = result.get("progress", (None, None))
        # steps finished of those this run attempts: a log (nohup, CI) shows how far a long study got
        count = f" [dim][{done}/{total}][/dim]" if total else ""
        if result["ok"]:
            seconds = result.get("seconds")
            took = f" [dim]({seconds:.0f} s)[/dim]" if seconds is not None else ""
            console.print(f"[green]✓[/green] {escape(step.name)}{took}{count}")
        else:
            # soft_wrap: an error names paths, which a hard wrap at the console width would cut in two
            console.print(f"[red]✗ {escape(step.name)}[/red]{count} (attempt {result['attempt']}): "
                          f"{escape(result['error'])}", soft_wrap=True)

    return report


@app.command("run")
def run(
    study: Path | None = typer.Argument(None, help="STUDY.yaml (see docs/study.md); or --builtin NAME."),
    builtin: str | None = typer.Option(None, "--builtin", help="A built-in study instead of a file: efficacy, "
                                       "efficacy-quick (docs/efficacy.md), demo, demo-quick."),
    suites: list[str] = typer.Option([], "--suite", help="With --builtin: an extra audit suite (repeatable), e.g. "
                                     "advbench:PATH or xstest:PATH, to reach the protocol's item counts."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default runs/<study name>); "
                                    "re-running resumes, recomputing only steps whose inputs changed."),
    ray: str | None = RAY,
    max_parallel: int | None = MAX_PARALLEL,
    kinds: str = KINDS,
    device: str = options.DEVICE,
) -> None:
    """Run (or resume) a study, then write RUN_DIR/report.html. --device runs every step there (finished steps are
    reused: the device is in no step key)."""
    from safepeft.store.lock import run_dir_lock
    from safepeft.study import run_study

    spec = _spec(study, builtin, suites)
    override = step_device(device, ray)
    console = Console()
    run_dir = out or Path("runs") / spec.name
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file.", "Pass a directory (it is created if missing).")
    with run_dir_lock(run_dir):  # a second `study run` on the same directory waits, then reuses every step
        summary = run_study(spec, run_dir, executor=_executor(ray, max_parallel), kinds=kinds,
                            report=_printer(console), device=override)
    console.print(f"{len(summary.ran)} step(s) ran, {len(summary.reused)} reused, {len(summary.failed)} failed, "
                  f"{len(summary.blocked)} blocked, in {summary.seconds:.1f} s. Run directory: {escape(str(run_dir))}",
                  soft_wrap=True)
    if summary.report:
        console.print(f"Report: {summary.report}")
    if summary.failed:
        console.print("See `safepeft study status` and retry with `safepeft study retry RUN_DIR STEP`.")
        raise typer.Exit(1)


@app.command("plan")
def plan(
    study: Path | None = typer.Argument(None, help="STUDY.yaml; or --builtin NAME."),
    builtin: str | None = typer.Option(None, "--builtin", help="A built-in study (see `study run --help`)."),
    suites: list[str] = typer.Option([], "--suite", help="With --builtin: an extra audit suite (repeatable)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="The run directory `study run` would use (default "
                                    "runs/<study name>): its finished steps are shown as cached."),
    as_json: bool = typer.Option(False, "--json", help="The plan as one JSON object."),
) -> None:
    """Print the steps a run would execute, which are cached, and an estimate of the time left; runs nothing."""
    from safepeft.study.runner import study_plan

    spec = _spec(study, builtin, suites)
    data = study_plan(spec, out or Path("runs") / spec.name)
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"plan of study {escape(spec.name)}")
    for column in ("step", "kind", "status", "estimate"):
        table.add_column(column, overflow="fold")
    for row in data["steps"]:
        estimate = "" if row["estimate_s"] is None else f"{row['estimate_s']:.0f} s"
        table.add_row(escape(row["step"]), row["kind"], "[green]cached[/green]" if row["cached"] else "to run",
                      estimate)
    console = Console()
    console.print(table)
    left = f"about {data['estimate_s'] / 60:.0f} min for the estimated steps" if data["estimate_s"] else "no estimate"
    unmeasured = (f"; no finished step yet to estimate {', '.join(data['unestimated_kinds'])}"
                  if data["unestimated_kinds"] else "")
    console.print(f"{len(data['steps'])} steps: {data['cached']} cached, {data['todo']} to run ({left}{unmeasured}). "
                  f"{len(data['variants'])} variants in the report.", soft_wrap=True)
    for line in data["skipped"]:
        console.print(f"[dim]skipped: {escape(line)}[/dim]", soft_wrap=True)


def _spec(study: Path | None, builtin: str | None, suites: list[str]) -> Any:
    from safepeft.study import load_study
    from safepeft.study.builtin import builtin_study

    if (study is None) == (builtin is None):
        raise ConfigError("Give a STUDY.yaml or --builtin NAME (not both, not neither).",
                          "For example `safepeft study run --builtin efficacy-quick`.")
    if suites and builtin is None:
        raise ConfigError("--suite adds suites to a built-in study only.", "Add them to `audit.suites` in the YAML.")
    return builtin_study(builtin, suites) if builtin is not None else load_study(study)


@app.command("status")
def status(
    run_dir: Path = typer.Argument(..., help="The study's run directory."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per step."),
) -> None:
    """Show each step: done, running, interrupted, failed (with its error), blocked or pending."""
    from safepeft.study import study_status

    rows = study_status(run_dir)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"study {run_dir}")
    for column in ("step", "status", "attempts", "seconds", "error"):
        table.add_column(column)
    for row in rows:
        colour = STYLE[row["status"]]
        table.add_row(escape(row["step"]), f"[{colour}]{row['status']}[/{colour}]", str(row["attempts"]),
                      "" if row["seconds"] is None else str(row["seconds"]), escape(row["error"] or ""))
    console = Console()
    console.print(table)
    counts = {s: sum(r["status"] == s for r in rows) for s in STYLE}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))


@app.command("retry")
def retry(
    run_dir: Path = typer.Argument(..., help="The study's run directory."),
    step: str = typer.Argument(..., help="Step name as shown by `safepeft study status`."),
    ray: str | None = RAY,
    kinds: str = KINDS,
    device: str = options.DEVICE,
) -> None:
    """Run one step again (its dependencies must be done), then refresh the report."""
    from safepeft.store.lock import run_dir_lock
    from safepeft.study import retry_step

    if not run_dir.is_dir():
        raise ConfigError(f"No study run directory at {run_dir}.", "Pass the --out of a `safepeft study run`.")
    override = step_device(device, ray)
    with run_dir_lock(run_dir):
        summary = retry_step(run_dir, step, executor=_executor(ray, None), kinds=kinds, report=_printer(Console()),
                             device=override)
    if summary.failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="study")
