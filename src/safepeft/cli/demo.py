"""`safepeft demo`: the whole loop on the embedded SmolLM2, as a built-in study.

audit the base → align → audit the aligned reference → LoRA fine-tune on the built-in arithmetic task (drift) →
SafeLoRA and SPLoRA repairs → SaLoRA variant → int8 quantized variants → perplexity-guarded variants → audits (with a
base64 jailbreak) →
RUN_DIR/report.html. It is an ordinary study (see docs/study.md), so interrupting and re-running continues where it
stopped, and `safepeft study status RUN_DIR` shows the steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

def demo(
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/demo); re-running resumes."),
    quick: bool = typer.Option(False, "--quick", help="Tiny budgets: checks that every step runs (CI smoke run, "
                               "a few minutes); its numbers mean nothing."),
) -> None:
    """Run the whole loop on the embedded model and write RUN_DIR/report.html."""
    from safepeft.cli.study import _printer
    from safepeft.study import run_study
    from safepeft.study.builtin import builtin_study

    console = Console()
    run_dir = out or Path("runs") / ("demo-quick" if quick else "demo")
    spec = builtin_study("demo-quick" if quick else "demo")
    console.rule("safepeft demo: embedded SmolLM2-135M-Instruct, the whole loop")
    console.print(f"Run directory: {escape(str(run_dir))} (interrupt any time; re-run to continue)")
    started = time.perf_counter()
    summary = run_study(spec, run_dir, report=_printer(console))
    console.print(f"{len(summary.ran)} step(s) ran, {len(summary.reused)} reused, {len(summary.failed)} failed, "
                  f"in {time.perf_counter() - started:.0f} s.")
    if summary.report:
        console.print(f"[bold]Report: {escape(str(summary.report))}[/bold]")
    if summary.failed:
        console.print(f"See `safepeft study status {run_dir}`; re-run `safepeft demo` to retry.")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
