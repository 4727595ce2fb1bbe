"""`safepeft generate`: batched generation from the command line, optionally stored (resumable) in a run dir."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from safepeft.cli import options
from safepeft.cli.spec_options import OptionGroup, spec_command
from safepeft.errors import ConfigError, DataError
from safepeft.models.target_spec import TargetSpec
from safepeft.records.generation import GenParams, Prompt
from safepeft.store.text import read_user_text


def _generate(
    target: dict,
    prompt: list[str] = typer.Option(None, "--prompt", "-p", help="A prompt (repeatable)."),
    prompts: Path | None = typer.Option(None, "--prompts", help="File: one prompt per line (.txt) or JSONL rows "
                                        "with a `prompt` (text or chat messages)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    seed: int = typer.Option(0, "--seed"),
    system_prompt: str | None = typer.Option(None, "--system-prompt"),
    run_dir: Path | None = options.RUN_DIR,
    as_jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON object per prompt."),
) -> None:
    """Generate completions (greedy by default)."""
    from safepeft.target import Models, open_target

    items = list(prompt or []) + (read_prompts(prompts) if prompts else [])
    if not items:
        raise ConfigError("No prompts given.", "Pass --prompt TEXT (repeatable) or --prompts FILE.")
    params = GenParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, system_prompt=system_prompt)
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file.", "Pass a directory (it is created if missing).")
    spec = TARGET.build(target)
    models = Models(spec.dtype, spec.device)
    opened = open_target(spec, models)  # a model that cannot load (NaN, pickle) fails before --run-dir is created
    if run_dir is not None:
        from safepeft.models.batch_size import chunk_size
        from safepeft.models.cached import CachedGenerator
        from safepeft.store import RunStore, atomic_write_text
        from safepeft.store.lock import run_dir_lock

        with run_dir_lock(run_dir), RunStore(run_dir) as store:
            cached = CachedGenerator(opened.generator, store, chunk_size=chunk_size(spec.batch_size))
            outputs = cached.generate(items, params)
            lines = [json.dumps({"prompt": p, "output": o}, ensure_ascii=False)
                     for p, o in zip(items, outputs, strict=True)]
            atomic_write_text(Path(run_dir) / "generations.jsonl", "\n".join(lines) + "\n")
    else:
        outputs = opened.generator.generate(items, params)
    for item, output in zip(items, outputs, strict=True):
        if as_jsonl:
            typer.echo(json.dumps({"prompt": item, "output": output}, ensure_ascii=False))
        else:
            typer.echo(f"### {item if isinstance(item, str) else item[-1]['content']}\n{output}\n")


# The target flags are `safepeft audit`'s, from the same spec; a guard is an audit's concern.
TARGET = OptionGroup(TargetSpec, "target", flags={"model": ("--model", "-m")}, first=("model",), skip=("guard",),
                     types={"batch_size": str})
generate = spec_command(_generate, TARGET)


def read_prompts(path: Path) -> list[Prompt]:
    """Read prompts from .txt (one per non-empty line) or .jsonl (`prompt` field: text or messages)."""
    text = read_user_text(path, "Prompts file")
    if path.suffix != ".jsonl":
        return [line for line in text.splitlines() if line.strip()]
    items: list[Prompt] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(row["prompt"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path}:{number}: not a JSON object with a `prompt` field ({exc}).",
                'Each line must look like {"prompt": "..."}.',
            ) from exc
    return items


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
