"""`safepeft demo`: the whole loop on the embedded SmolLM2, as a built-in study.

audit the base → align → audit the aligned reference → contaminated LoRA fine-tune (the arithmetic task with 10%
harmful requests answered by the unaligned base, generated here) → SafeLoRA, SPLoRA and RESTA repairs → SaLoRA
variant → int8 quantized variants → perplexity-guarded variants → audits (with a base64 jailbreak) →
RUN_DIR/report.html, and the recovery of each repair printed at the end. It is an ordinary study (see
docs/study.md), so interrupting and re-running continues where it stopped, and `safepeft study status RUN_DIR`
shows the steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from safepeft.cli import options


def demo(
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/demo); re-running resumes."),
    quick: bool = typer.Option(False, "--quick", help="Tiny budgets: checks that every step runs (CI smoke run, "
                               "a few minutes); its numbers mean nothing."),
    device: str = options.DEVICE,
) -> None:
    """Run the whole loop on the embedded model and write RUN_DIR/report.html."""
    from safepeft.cli.study import _printer, step_device
    from safepeft.study import run_study
    from safepeft.study.builtin import builtin_study

    override = step_device(device)  # every step's device; a device this machine lacks fails before anything runs
    console = Console()
    run_dir = out or Path("runs") / ("demo-quick" if quick else "demo")
    spec = builtin_study("demo-quick" if quick else "demo")
    console.rule("safepeft demo: embedded SmolLM2-135M-Instruct, the whole loop")
    console.print(f"Run directory: {escape(str(run_dir))} (interrupt any time; re-run to continue)")
    started = time.perf_counter()
    summary = run_study(spec, run_dir, report=_printer(console), device=override)
    console.print(f"{len(summary.ran)} step(s) ran, {len(summary.reused)} reused, {len(summary.failed)} failed, "
                  f"in {time.perf_counter() - started:.0f} s.")
    _print_recovery(console, run_dir)
    if summary.report:
        console.print(f"[bold]Report: {escape(str(summary.report))}[/bold]")
    if summary.failed:
        console.print(f"See `safepeft study status {run_dir}`; re-run `safepeft demo` to retry.")
        raise typer.Exit(1)


def _print_recovery(console: Console, run_dir: Path) -> None:
    """The efficacy rows: how much of the lost safety each repair gave back, at what utility."""
    from rich.table import Table

    from safepeft.records.efficacy import EfficacyResults
    from safepeft.records.results import rate_word
    from safepeft.report import text

    path = run_dir / "efficacy.json"
    if not path.is_file():
        return
    efficacy = EfficacyResults.model_validate_json(path.read_text(encoding="utf-8"))
    word = rate_word(efficacy.safety_rate)  # compliance (did not refuse) under a refusal judge, else harmful
    console.print(f"[dim]{escape(text.efficacy_rate_note(efficacy))}[/dim]", soft_wrap=True)
    for drift in efficacy.drifts:
        console.print(f"{escape(drift.finetune)}: {word} {text.value(drift.harmful_aligned.value, True)} aligned → "
                      f"{text.value(drift.harmful_finetuned.value, True)} fine-tuned (drift "
                      f"{text.delta(drift.drift.value, True)} {text.delta_interval(drift.drift.ci95, True)}, "
                      f"{drift.n_harmful} items)")
    table = Table(title="Repair efficacy (test split; recovery = share of the lost safety given back)")
    for column in ("repair", word, "recovery", "utility kept"):
        table.add_column(column, overflow="fold")
    for row in efficacy.rows:
        table.add_row(row.repair, text.value(row.harmful_rate.value, True),
                      f"{text.value(row.recovery.value, True)} {text.interval(row.recovery.ci95, True)}",
                      f"{text.value(row.utility_kept.value, True)} {text.interval(row.utility_kept.ci95, True)}")
    console.print(table)
    for note in efficacy.notes:
        console.print(f"[dim]{escape(note)}[/dim]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
