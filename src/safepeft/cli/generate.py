"""`safepeft generate`: batched generation from the command line, optionally stored (resumable) in a run dir."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from safepeft.cli import options
from safepeft.errors import ConfigError, DataError
from safepeft.records.generation import GenParams, Prompt
from safepeft.store.text import read_user_text


def generate(
    model: str = options.MODEL,
    adapter: Path | None = options.ADAPTER,
    prompt: list[str] = typer.Option(None, "--prompt", "-p", help="A prompt (repeatable)."),
    prompts: Path | None = typer.Option(None, "--prompts", help="File: one prompt per line (.txt) or JSONL rows "
                                        "with a `prompt` (text or chat messages)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    seed: int = typer.Option(0, "--seed"),
    system_prompt: str | None = typer.Option(None, "--system-prompt"),
    batch_size: int = options.BATCH_SIZE,
    run_dir: Path | None = options.RUN_DIR,
    as_jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON object per prompt."),
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Generate completions (greedy by default)."""
    items = list(prompt or []) + (read_prompts(prompts) if prompts else [])
    if not items:
        raise ConfigError("No prompts given.", "Pass --prompt TEXT (repeatable) or --prompts FILE.")
    params = GenParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, system_prompt=system_prompt)
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file.", "Pass a directory (it is created if missing).")
    loaded = options.load(model, adapter, dtype, device, chat_template, trust_remote_code)
    generator = loaded.generator(batch_size=batch_size)
    if run_dir is not None:
        from safepeft.models.cached import CachedGenerator
        from safepeft.store import RunStore, atomic_write_text
        from safepeft.store.lock import run_dir_lock

        with run_dir_lock(run_dir), RunStore(run_dir) as store:
            outputs = CachedGenerator(generator, store, chunk_size=batch_size).generate(items, params)
            lines = [json.dumps({"prompt": p, "output": o}, ensure_ascii=False)
                     for p, o in zip(items, outputs, strict=True)]
            atomic_write_text(Path(run_dir) / "generations.jsonl", "\n".join(lines) + "\n")
    else:
        outputs = generator.generate(items, params)
    for item, output in zip(items, outputs, strict=True):
        if as_jsonl:
            typer.echo(json.dumps({"prompt": item, "output": output}, ensure_ascii=False))
        else:
            typer.echo(f"### {item if isinstance(item, str) else item[-1]['content']}\n{output}\n")


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
