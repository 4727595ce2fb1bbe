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
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

# Budgets: the full demo fits in ~15 minutes on a 2-core CPU; --quick is the CI smoke run.
BUDGETS: dict[str, dict[str, Any]] = {
    # align 36 steps is `safepeft align`'s default (held-out refusal 0.11 -> 0.95 on this model, docs/finetune.md).
    # SaLoRA's calibration: harmful prompts (with the model's own replies) + training rows (the paper: 128 each).
    # The 12 audits dominate (each: 22 harmful + 22 base64-encoded + 22 benign generations, BBQ and arithmetic).
    "full": {"align_steps": 36, "train_steps": 30, "salora_steps": 30, "calibration": 32, "per_category": 2,
             "max_new_tokens": 40},
    # quick: every step of the loop runs, on budgets too small to mean anything (~4 minutes on 2 cores).
    "quick": {"align_steps": 6, "train_steps": 4, "salora_steps": 4, "calibration": 16, "per_category": 1,
              "max_new_tokens": 16},
}


def demo_study(quick: bool) -> dict[str, Any]:
    """The demo as a study definition (what a user would write in STUDY.yaml)."""
    b = BUDGETS["quick" if quick else "full"]
    lora = {"max_steps": b["train_steps"], "learning_rate": 1e-3, "batch_size": 4}
    return {
        "name": "demo-quick" if quick else "demo",
        "models": [{"name": "smollm2", "model": "embedded", "align": {"params": {"max_steps": b["align_steps"]}}}],
        "finetune": [
            {"name": "lora-arithmetic", "method": "lora", "data": "builtin:arithmetic", "params": lora},
            {"name": "salora-arithmetic", "method": "salora", "data": "builtin:arithmetic",
             # SaLoRA keeps its paper's lr (1e-4): its PiSSA-style init moves much faster than LoRA's B = 0 at 1e-3.
             "params": {"max_steps": b["salora_steps"], "batch_size": 4, "safety_samples": b["calibration"],
                        "task_samples": b["calibration"]}},
        ],
        "repairs": ["safelora", {"method": "splora", "params": {"mode": "number", "k": 8}}],
        "quantize": [{"name": "int8-dynamic", "apply_to": ["finetuned"]}],
        # The perplexity filter (calibrated on benign prompts) against base64-encoded requests: the report's
        # jailbreak section shows attack success with and without it, and its over-block rate on builtin-benign.
        # (`refusal-classifier` backtranslates answers into requests, which a 135M model cannot do: it never fires.)
        "guards": [{"name": "perplexity", "apply_to": ["finetuned"]}],
        "audit": {"suites": ["builtin", "builtin-benign", "bbq-builtin", "arithmetic"], "attacks": ["base64"],
                  "per_category": b["per_category"], "max_new_tokens": b["max_new_tokens"], "batch_size": 32,
                  "bootstrap": 500},
    }


def demo(
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/demo); re-running resumes."),
    quick: bool = typer.Option(False, "--quick", help="Tiny budgets: checks that every step runs (CI smoke run, "
                               "a few minutes); its numbers mean nothing."),
) -> None:
    """Run the whole loop on the embedded model and write RUN_DIR/report.html."""
    from safepeft.cli.study import _printer
    from safepeft.study import run_study
    from safepeft.study.spec import parse_study

    console = Console()
    run_dir = out or Path("runs") / ("demo-quick" if quick else "demo")
    spec = parse_study(demo_study(quick), "the built-in demo study")
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
