"""Reading benchmark rows from where a user keeps them: a file, a folder, or a Hugging Face hub id.

Every reader returns plain ``dict`` rows; suites pick their columns with :func:`field`, which accepts several
spellings because the same benchmark ships with different headers (CSV vs hub copy, old vs new release).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safepeft.errors import DataError

Row = dict[str, Any]


def read_table(path: Path, option: str = "--suite NAME:PATH") -> list[Row]:
    """A .csv, .jsonl or .json file as rows (BOM-tolerant, RFC-4180 CSV with embedded newlines). ``option`` is the
    flag the path came from, for the error message."""
    if not path.is_file():
        raise DataError(f"No file at {path}.", f"Check the path given to {option}.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return list(csv.DictReader(handle))
        if suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line.strip()]
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, list) else list(data.get("data") or data.get("rows") or [])
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} could not be parsed ({exc}).", "Pass the benchmark's original file.") from exc
    raise DataError(f"{path} has an unsupported extension {suffix!r}.", "Use .csv, .jsonl or .json.")


def pick_file(directory: Path, candidates: Sequence[str], suite: str) -> Path:
    """The first of ``candidates`` (file names or glob patterns) present in ``directory``."""
    for pattern in candidates:
        found = sorted(directory.glob(pattern))
        if found:
            return found[0]
    raise DataError(
        f"{directory} holds none of the files the {suite} suite reads ({', '.join(candidates)}).",
        f"Point `--suite {suite}:PATH` at the benchmark's file or at the folder that contains it.",
    )


def load_hub(repo_id: str, config: str | None = None, split: str | None = None) -> list[Row]:
    """Rows of a hub dataset (first split unless ``split`` is given). Needs network or a warm HF cache."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        from safepeft.errors import missing_dependency

        raise missing_dependency("datasets", f"Loading {repo_id} from the Hugging Face hub") from exc
    try:
        loaded = datasets.load_dataset(repo_id, config) if config else datasets.load_dataset(repo_id)
    except Exception as exc:  # datasets raises many kinds (ConnectionError, DatasetNotFoundError, ValueError ...)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"Could not load the hub dataset {repo_id}{f' ({config})' if config else ''}: {first}",
            "Without network, download the benchmark files and pass their path: `--suite NAME:PATH`.",
        ) from exc
    names = list(loaded.keys())
    chosen = split if split is not None else names[0]
    if chosen not in loaded:
        raise DataError(f"{repo_id} has no split {chosen!r} (it has {', '.join(names)}).")
    return [dict(row) for row in loaded[chosen]]


def field(row: Row, *names: str, default: Any = ..., where: str = "") -> Any:
    """The value of the first of ``names`` present in ``row`` (case-insensitive); ``default`` if none is."""
    lowered = {str(key).strip().lower(): value for key, value in row.items()}
    for name in names:
        if name.lower() in lowered and lowered[name.lower()] is not None:
            return lowered[name.lower()]
    if default is not ...:
        return default
    raise DataError(
        f"{where or 'A row'} has none of the columns {', '.join(names)} (it has {', '.join(map(str, row))}).",
        "Pass the benchmark's original file (see docs/audit.md for the expected layouts).",
    )
