"""Calibration data: harmful prompts with the aligned model's own refusals (safety) and training rows (task).

Safety rows come from ``builtin:safety`` (its ``kind: harmful`` rows) or any training-format file/dataset
(``safety_data``; rows with a ``kind`` field keep only ``harmful`` ones). With ``safety_responses="model"`` (the
paper's recipe: Wei et al.'s safety set holds Llama-2-chat's own answers) the model's greedy reply replaces the
written refusal, so U_s spans the features the model itself uses when it refuses; ``"data"`` keeps the file's reply.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from safepeft.errors import DataError
from safepeft.finetune.base import Example, collate
from safepeft.finetune.chat import tokenize_conversation
from safepeft.finetune.rows import DataSpec, Row, read_rows

DEFAULT_SAFETY_DATA = "builtin:safety"
T = TypeVar("T")


def sample(items: Sequence[T], n: int, seed: int) -> list[T]:
    """``n`` items drawn without replacement (all of them, in order, if there are not more than ``n``)."""
    if len(items) <= n:
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in picked]


def safety_rows(source: str | None) -> list[Row]:
    """Harmful-request rows of the safety set (each ends with an assistant reply)."""
    spec = DataSpec(source=source or DEFAULT_SAFETY_DATA)
    rows, bad = read_rows(spec)
    if bad:
        raise DataError(
            f"{len(bad)} malformed row(s) in the SaLoRA safety data {spec.source} (first: {bad[0].source}: "
            f"{bad[0].reason}).",
            "Fix them; safety rows need a harmful request and an assistant reply.",
        )
    if any("kind" in row.meta for row in rows):
        rows = [row for row in rows if row.meta.get("kind") == "harmful"]
    if not rows:
        raise DataError(f"No harmful-request rows in the SaLoRA safety data {spec.source}.",
                        "Pass a file of harmful prompts with refusals via safety_data.")
    return rows


def with_model_replies(loaded: Any, rows: Sequence[Row], batch_size: int, max_new_tokens: int) -> list[Row]:
    """The rows with their last assistant message replaced by the model's greedy reply to the turns before it."""
    from safepeft.records import GenParams

    prompts = [row.messages[:-1] for row in rows]
    replies = loaded.generator(batch_size=batch_size).generate(prompts, GenParams(max_new_tokens=max_new_tokens))
    return [Row(p + [{"role": "assistant", "content": r}], row.source, row.meta)
            for p, r, row in zip(prompts, replies, rows, strict=True)]


def tokenize_rows(tokenizer: Any, rows: Sequence[Row]) -> list[Example]:
    return [tokenize_conversation(tokenizer, row.messages, row.source) for row in rows]


def batched(examples: Sequence[Example], batch_size: int, pad_token_id: int) -> list[dict[str, Any]]:
    """Right-padded batches; sorted by length so little compute goes to padding (order does not change G)."""
    ordered = sorted(examples, key=lambda e: len(e.input_ids))
    return [collate(ordered[i: i + batch_size], pad_token_id) for i in range(0, len(ordered), batch_size)]
