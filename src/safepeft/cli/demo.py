"""`safepeft demo`: the loop on the embedded model. Grows with the product, one stage per landed capability."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from safepeft.cli import options
from safepeft.records.generation import GenParams

DEMO_PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for learning a new language.",
    "Write a haiku about autumn.",
    "Explain in one sentence what a LoRA adapter is.",
]


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory (re-running resumes)."),
    quick: bool = typer.Option(False, "--quick", help="Smaller budgets (used by CI)."),
) -> None:
    """Load the embedded SmolLM2 and show what safepeft can do with it."""
    console = Console()
    started = time.perf_counter()
    console.rule("safepeft demo: embedded SmolLM2-135M-Instruct")
    loaded = options.load("embedded")
    info = loaded.info()
    table = Table(show_header=False, title="model")
    for key in ("architecture", "parameters", "layers", "dtype", "chat_template", "fingerprint"):
        table.add_row(key, f"{info[key]:,}" if key == "parameters" else str(info[key]))
    console.print(table)

    from safepeft.models.cached import CachedGenerator
    from safepeft.store import RunStore, atomic_write_json

    store = RunStore(out)
    prompts = DEMO_PROMPTS[:2] if quick else DEMO_PROMPTS
    params = GenParams(max_new_tokens=48 if quick else 64)
    outputs = CachedGenerator(loaded.generator(batch_size=8), store).generate(prompts, params)
    for prompt, output in zip(prompts, outputs):
        console.print(f"[bold]> {prompt}[/bold]\n{output.strip()}\n")
    atomic_write_json(out / "demo.json", {"model": info, "generations": dict(zip(prompts, outputs))})
    console.print(f"Done in {time.perf_counter() - started:.1f} s. Results: {out / 'demo.json'}")
    typer.echo(json.dumps({"run_dir": str(out)}))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
