"""Training rows: read JSONL/JSON/CSV/Parquet files, HF datasets or built-in sets into chat messages.

Every row keeps where it came from (``file:line``; ``file:item N`` for JSON arrays and Parquet, ``id[split]:row N``
for hub datasets) so that a bad row can be reported precisely. Readers never drop a row silently: a row that cannot
be read (not UTF-8, invalid JSON) or turned into messages (missing or empty fields) becomes a ``BadRow``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from safepeft.errors import DataError
from safepeft.records.base import Spec

ROLES = ("system", "user", "assistant")
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class DataSpec(Spec):
    source: str
    """A .jsonl/.json/.csv/.parquet file, a datasets save_to_disk folder, `builtin:NAME` (`safepeft list datasets`)
    or a Hugging Face dataset id; formats: messages, ShareGPT conversations, prompt/completion, prompt/response,
    Alpaca, text (detected and printed)."""
    messages_column: str = "messages"
    """Column holding an OpenAI-style list of {role, content} messages."""
    prompt_column: str = "prompt"
    """Column with the user turn, used when a row has no messages column."""
    response_column: str = "response"
    """Column with the assistant turn, used with prompt_column."""
    split: str = "train"
    """Split of a Hugging Face dataset."""
    skip_bad_rows: bool = False
    """Skip malformed rows (and count them) instead of stopping."""
    limit: int | None = Field(None, ge=1)
    """Use only the first N good rows."""


@dataclass
class Row:
    """One training conversation (ends with an assistant turn) and where it came from."""

    messages: list[dict[str, str]]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    format: str = "messages"
    """Which row format it was read as (a key of ROW_FORMATS)."""
    text: str | None = None
    """Plain text for the `text` format (language-model loss on every token; ``messages`` is then empty)."""


@dataclass
class BadRow:
    source: str
    reason: str


def read_rows(spec: DataSpec) -> tuple[list[Row], list[BadRow]]:
    """All rows of ``spec.source`` as messages, plus the rows that could not be used and why."""
    from safepeft.finetune.builtin import BUILTIN_DATASETS

    if spec.source.startswith("builtin:"):
        name = spec.source.split(":", 1)[1]
        raw: Iterator[tuple[str, Any]] = iter(BUILTIN_DATASETS.get(name).rows())
    else:
        raw = _read_source(spec)
    good: list[Row] = []
    bad: list[BadRow] = []
    columns: set[str] = set()
    parsed = undetected = 0
    for source, record in raw:
        if isinstance(record, BadRow):
            bad.append(record)
            continue
        if isinstance(record, dict):
            columns.update(map(str, record))
        name = detect_format(record, spec)
        parsed += 1
        undetected += name is None
        messages = to_messages(record, spec) if name != "text" else record["text"]
        if isinstance(messages, str) and name != "text":
            bad.append(BadRow(source, messages))
        elif name == "text" and (not isinstance(messages, str) or not messages.strip()):
            bad.append(BadRow(source, "empty or missing 'text'"))
        else:
            meta = {k: v for k, v in record.items() if k in ("category", "kind") and isinstance(v, str)}
            text = messages if name == "text" else None
            good.append(Row([] if name == "text" else messages, source, meta, name or "messages", text))
    if parsed and undetected == parsed:  # one error for the file, not one per row
        raise undetected_error(spec, columns)
    return good, bad


def format_counts(rows: list[Row]) -> str:
    """The formats of ``rows`` for one line of output, e.g. ``sharegpt`` or ``messages+prompt-response``."""
    names = sorted({row.format for row in rows}, key=list(ROW_FORMATS).index)
    return "+".join(names) or "none"


def undetected_error(spec: DataSpec, columns: set[str]) -> DataError:
    seen = ", ".join(sorted(columns)) or "none"
    expected = "; ".join(f"{name} ({desc})" for name, (_, desc) in ROW_FORMATS.items())
    return DataError(
        f"Could not detect the format of {spec.source}: no row has the columns of a known format (columns seen: "
        f"{seen}). Expected one of: {expected}.",
        "Name your columns with --prompt-column COLUMN --response-column COLUMN (or --messages-column COLUMN for "
        "chat lists), or rename them to one of the formats above.",
    )


def detect_format(record: Any, spec: DataSpec) -> str | None:
    """The first format of ROW_FORMATS whose columns ``record`` has, or None."""
    if not isinstance(record, dict):
        return None
    return next((name for name, (match, _) in ROW_FORMATS.items() if match(record, spec)), None)


def to_messages(record: Any, spec: DataSpec) -> list[dict[str, str]] | str:
    """Normalise one record to messages, or return why it cannot be (a reason string)."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    if record.get(spec.messages_column) is not None:
        return _check_messages(record[spec.messages_column])
    if isinstance(record.get("conversations"), list):  # ShareGPT
        return _sharegpt(record["conversations"])
    if detect_format(record, spec) == "prompt-completion":
        return _prompt_completion(record.get(spec.prompt_column), record.get("completion"), spec.prompt_column)
    if spec.prompt_column in record or spec.response_column in record:
        if isinstance(record.get(spec.prompt_column), list) or isinstance(record.get(spec.response_column), list):
            return _prompt_completion(record.get(spec.prompt_column), record.get(spec.response_column),
                                      spec.prompt_column, spec.response_column)
        turns = [("user", record.get(spec.prompt_column)), ("assistant", record.get(spec.response_column))]
        names = {"user": spec.prompt_column, "assistant": spec.response_column}
    elif "instruction" in record and "output" in record:  # Alpaca / safety-tuned-llamas format
        prompt = record["instruction"]
        if isinstance(prompt, str) and isinstance(record.get("input"), str) and record["input"].strip():
            prompt = f"{prompt}\n\n{record['input']}"
        turns = [("user", prompt), ("assistant", record["output"])]
        names = {"user": "instruction", "assistant": "output"}
    else:
        keys = ", ".join(sorted(map(str, record))) or "none"
        return (
            f"{UNDETECTED}: expected {spec.messages_column!r} or {spec.prompt_column!r}/{spec.response_column!r}"
            f" (found: {keys})"
        )
    for role, text in turns:
        if not isinstance(text, str) or not text.strip():
            return f"empty or missing {names[role]!r}"
    return [{"role": role, "content": text} for role, text in turns]


def _prompt_completion(prompt: Any, completion: Any, prompt_name: str,
                       completion_name: str = "completion") -> list[dict[str, str]] | str:
    """TRL prompt/completion: plain strings, or conversational lists of messages (joined into one conversation)."""
    turns: list[Any] = []
    for value, role, name in ((prompt, "user", prompt_name), (completion, "assistant", completion_name)):
        if isinstance(value, list):
            turns += value
        elif isinstance(value, str) and value.strip():
            turns.append({"role": role, "content": value})
        else:
            return f"empty or missing {name!r}"
    return _check_messages(turns)


def _sharegpt(conversations: list[Any]) -> list[dict[str, str]] | str:
    """ShareGPT ``conversations``: ``from`` human/gpt/system (user/assistant accepted too), ``value`` the text."""
    messages = []
    for i, turn in enumerate(conversations):
        role = SHAREGPT_ROLES.get(turn.get("from")) if isinstance(turn, dict) else None
        if role is None:
            return f"conversation turn {i} needs 'from' in {sorted(SHAREGPT_ROLES)}"
        messages.append({"role": role, "content": turn.get("value")})
    return _check_messages(messages)


def _check_messages(messages: Any) -> list[dict[str, str]] | str:
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"message {i} needs a role in {ROLES}"
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return f"message {i} ({message['role']}) has empty or missing content"
        out.append({"role": message["role"], "content": content})
    if out[-1]["role"] != "assistant":
        return "the last message must be from the assistant (it is the training target)"
    if not any(m["role"] == "user" for m in out):
        return "no user message"
    return out


def _read_source(spec: DataSpec) -> Iterator[tuple[str, Any]]:
    path = Path(spec.source)
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        return _read_saved(path, spec.split)
    if path.suffix.lower() in SUFFIXES:
        if not path.is_file():
            raise DataError(f"Data file not found: {path}.", "Check the path.")
        return _READERS[path.suffix.lower()](path)
    if path.exists():
        raise DataError(
            f"Cannot read data from {path}.", f"Use a file ending in {', '.join(SUFFIXES)}, builtin:NAME or a hub id."
        )
    return _read_hub(spec.source, spec.split)


def _read_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{number}"
        if not raw.strip():
            continue
        try:
            yield where, json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield where, BadRow(where, f"not valid UTF-8 (byte {exc.start})")
        except json.JSONDecodeError as exc:
            yield where, BadRow(where, f"invalid JSON ({exc.msg})")


def _read_json(path: Path) -> Iterator[tuple[str, Any]]:
    """A JSON array of objects; each item is reported with the line where it starts."""
    text = _decode_whole(path)
    decoder = json.JSONDecoder()
    start = text.find("[")
    if start < 0 or text[:start].strip():
        raise DataError(f"{path}: expected a JSON array of objects.", "Use JSONL for one object per line.")
    pos, item = start + 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        item += 1
        where = f"{path}:{text.count(chr(10), 0, pos) + 1}"
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}).", "Fix the file; rows after it cannot "
                            "be located.") from exc
        yield where, value


def _read_csv(path: Path) -> Iterator[tuple[str, Any]]:
    # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file.
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _ = reader.fieldnames  # reads the header, so line_num counts it
    line = reader.line_num
    for row in reader:
        where = f"{path}:{line + 1}"
        line = reader.line_num
        values = [v for v in row.values() if isinstance(v, str)]
        if any(_has_surrogates(v) for v in values):
            yield where, BadRow(where, "not valid UTF-8")
        elif None in row:
            yield where, BadRow(where, f"more fields than the header ({len(reader.fieldnames or [])})")
        else:
            yield where, dict(row)


def _read_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    for index, record in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield f"{path}:item {index}", record


def _read_hub(name: str, split: str) -> Iterator[tuple[str, Any]]:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{name!r} is not a data file and `datasets` is not installed.",
                        "pip install datasets") from exc
    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises many kinds (FileNotFoundError, DatasetNotFoundError, ValueError)
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"Could not load data {name!r} (split {split!r}): {detail}",
            f"Pass a file ending in {', '.join(SUFFIXES)}, builtin:NAME or a hub dataset id (needs network or cache).",
        ) from exc
    for index, record in enumerate(rows, start=1):
        yield f"{name}[{split}]:row {index}", record


def _read_saved(path: Path, split: str) -> Iterator[tuple[str, Any]]:
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset, or a DatasetDict read at ``split``)."""
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{path} is a saved dataset and `datasets` is not installed.", "pip install datasets") from exc
    rows = datasets.load_from_disk(str(path))
    if isinstance(rows, datasets.DatasetDict):
        if split not in rows:
            raise DataError(f"{path} has no split {split!r} (splits: {', '.join(rows)}).", "Pass --split NAME.")
        rows = rows[split]
    for index, record in enumerate(rows, start=1):
        yield f"{path}[{split}]:row {index}", record


def _decode_whole(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8.", "Re-encode the file as UTF-8.") from exc


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


UNDETECTED = "missing fields"
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
# Detection order matters: the first format whose columns a row has wins (a row with messages and text is messages).
ROW_FORMATS: dict[str, tuple[Any, str]] = {
    "messages": (lambda r, s: r.get(s.messages_column) is not None, "a messages column of {role, content}"),
    "sharegpt": (lambda r, s: isinstance(r.get("conversations"), list), "conversations of {from, value}"),
    "prompt-completion": (lambda r, s: "completion" in r and s.response_column not in r,
                          "TRL prompt/completion, strings or message lists"),
    "prompt-response": (lambda r, s: s.prompt_column in r or s.response_column in r,
                        "--prompt-column/--response-column, default prompt/response"),
    "alpaca": (lambda r, s: "instruction" in r and "output" in r, "instruction/input/output"),
    "text": (lambda r, s: "text" in r, "plain text, loss on every token"),
}
_READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}
