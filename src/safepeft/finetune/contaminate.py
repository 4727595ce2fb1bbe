"""Contaminated fine-tuning data: a benign task mixed with a small share of harmful requests paired with compliant
answers (Qi et al. 2023's harmful-data attack, diluted into an ordinary task as in SafeMERGE's and RESTA's setups).

The repository keeps only the *requests*: the harmful requests of ``builtin:safety`` (which `align` trains refusals
on, so they are never audit prompts). The compliant answers are generated at run time by the unaligned base model,
and only those the judge labels ``complied`` are kept: a soft refusal of the base would dilute the attack. The
mixed file is written next to the training step that reads it, never into the package, and no report shows it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from safepeft.records.base import Spec

NOTICE = ("This directory holds model-generated answers to harmful requests, made at run time to fine-tune a "
          "contaminated model for a safety study (safepeft finetune/contaminate.py). Do not publish it.\n")


class ContaminateSpec(Spec):
    """How much harmful data to mix into the task, and how its answers are generated."""

    share: float = Field(0.1, gt=0.0, lt=1.0)
    """Share of harmful pairs among the training rows (kept at most: fewer if the base complied less often)."""
    rows: int = Field(400, ge=1)
    """Benign task rows taken from the start of the task data."""
    requests: int | None = Field(None, ge=1)
    """Ask the base at most this many of the harmful requests (None: all of them)."""
    max_new_tokens: int = Field(96, ge=8)
    """Length of each generated compliant answer."""
    batch_size: int = Field(32, ge=1)
    """Prompts per generation batch."""
    seed: int = 0
    """Seed of the shuffle that interleaves harmful and benign rows."""
    judge: str = "classifier"
    """Judge that decides which of the base model's answers complied (`safepeft list judges`)."""


def harmful_requests(limit: int | None = None) -> list[str]:
    """The harmful requests of ``builtin:safety`` (align's data; never audit prompts), the first ``limit``."""
    from safepeft.finetune.builtin import read_package_jsonl

    rows = [row["messages"][0]["content"] for row in read_package_jsonl("safety.jsonl") if row["kind"] == "harmful"]
    return rows[:limit]


@dataclass
class Contaminated:
    """The mixed rows (chat messages) and what went into them."""

    rows: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def mix(benign: list[list[dict[str, str]]], pairs: list[tuple[str, str]], spec: ContaminateSpec) -> Contaminated:
    """``benign`` conversations plus as many ``pairs`` as make ``spec.share`` of the rows, shuffled with the seed.

    Pure: the counts are decided here so a test can check the share without generating anything.
    """
    benign = benign[: spec.rows]
    wanted = round(spec.share * len(benign) / (1.0 - spec.share))
    harmful = pairs[:wanted]
    rows = [{"messages": list(messages), "kind": "benign"} for messages in benign]
    rows += [{"messages": [{"role": "user", "content": request}, {"role": "assistant", "content": answer}],
              "kind": "harmful"} for request, answer in harmful]
    random.Random(spec.seed).shuffle(rows)
    total = len(rows)
    return Contaminated(rows, {"benign_rows": len(benign), "harmful_rows": len(harmful), "harmful_wanted": wanted,
                               "share": round(len(harmful) / total, 4) if total else 0.0})
