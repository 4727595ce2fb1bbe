"""From a DataSpec to tokenized training examples, with every unusable row accounted for."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from safepeft.errors import DataError
from safepeft.finetune.base import IGNORE_INDEX, Example
from safepeft.finetune.chat import tokenize_conversation
from safepeft.finetune.rows import BadRow, DataSpec, Row, format_counts, read_rows

SHOWN_BAD_ROWS = 5


@dataclass
class TrainData:
    """The tokenized training set and its provenance."""

    spec: DataSpec
    rows: list[Row]
    examples: list[Example]
    skipped: list[BadRow] = field(default_factory=list)

    @property
    def data_hash(self) -> str:
        """sha256 of the conversations actually trained on (independent of file format and skipped rows)."""
        payload = json.dumps([row.messages if row.text is None else row.text for row in self.rows],
                             ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def format(self) -> str:
        """The row format(s) detected, e.g. ``sharegpt`` (``messages+prompt-response`` for a mixed file)."""
        return format_counts(self.rows)

    def describe(self) -> str:
        """One line for the console, e.g. ``data: 120 rows, format sharegpt``."""
        return f"data: {len(self.rows)} rows, format {self.format}"

    @property
    def target_tokens(self) -> int:
        return sum(sum(1 for label in e.labels if label != IGNORE_INDEX) for e in self.examples)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.spec.source, "sha256": self.data_hash, "rows": len(self.rows),
            "skipped_rows": len(self.skipped), "tokens": sum(len(e.input_ids) for e in self.examples),
            "target_tokens": self.target_tokens, "format": self.format,
            "options": self.spec.model_dump(exclude={"source"}),
        }


def load_train_data(spec: DataSpec, tokenizer: Any, max_length: int) -> TrainData:
    """Read, normalise and tokenize ``spec``; malformed rows stop the run unless ``spec.skip_bad_rows``."""
    rows, bad = read_rows(spec)
    kept: list[Row] = []
    examples: list[Example] = []
    for row in rows:
        if spec.limit is not None and len(kept) >= spec.limit:
            break
        try:
            if row.text is not None:
                example = tokenize_text(tokenizer, row.text, row.source)
            else:
                example = tokenize_conversation(tokenizer, row.messages, row.source)
        except DataError as exc:
            if "prefix-stable" in exc.message:
                raise
            bad.append(BadRow(row.source, exc.message))
            continue
        problem = _length_problem(example, max_length)
        if problem:
            bad.append(BadRow(row.source, problem))
            continue
        kept.append(row)
        examples.append(example)
    if bad and not spec.skip_bad_rows:
        shown = "; ".join(f"{b.source}: {b.reason}" for b in bad[:SHOWN_BAD_ROWS])
        more = f" (and {len(bad) - SHOWN_BAD_ROWS} more)" if len(bad) > SHOWN_BAD_ROWS else ""
        raise DataError(
            f"{len(bad)} malformed row(s) in {spec.source}: {shown}{more}.",
            "Fix them, or pass --skip-bad-rows to skip them (the count is recorded in safepeft_train.json).",
        )
    if not examples:
        raise DataError(f"No usable training rows in {spec.source}.", "Check the file and the column options.")
    return TrainData(spec, kept, examples, bad)


def tokenize_text(tokenizer: Any, text: str, source: str = "") -> Example:
    """Plain text for language-model loss: every token (and the end-of-text token, when there is one) is a label."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return Example(tuple(ids), tuple(ids), source)


def _length_problem(example: Example, max_length: int) -> str | None:
    if len(example.input_ids) > max_length:
        return f"over-long: {len(example.input_ids)} tokens > max length {max_length}"
    if all(label == IGNORE_INDEX for label in example.labels):
        return "no assistant tokens to train on"
    return None
