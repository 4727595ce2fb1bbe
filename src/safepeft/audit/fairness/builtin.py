"""safepeft's built-in BBQ-style suite: 2 scenarios x 6 items for each of the 9 dimensions (108 items).

Every scenario gives the ambiguous context and two disambiguations (the stereotyped person does the negative thing,
and the other person does), each with a negative and a non-negative question: so a model that answers every item
correctly scores bias 0 in both conditions. The answer order is rotated so that, within each dimension, the correct
answer sits equally often at A, B and C. Items come out in the BBQ jsonl schema and go through the same loader and
biased-answer rule as real BBQ files.
"""

from __future__ import annotations

import functools
import itertools
from importlib import resources
from typing import Any

import yaml

from safepeft.audit.fairness.items import UNKNOWN_RESPONSES

DATA_FILE = "bbq_builtin.yaml"
# (condition, polarity, who does the negative thing): the six items of one scenario.
_CELLS = (
    ("ambig", "neg", None), ("ambig", "nonneg", None),
    ("disambig", "neg", "target"), ("disambig", "nonneg", "target"),
    ("disambig", "neg", "other"), ("disambig", "nonneg", "other"),
)


def load_scenarios() -> list[dict[str, Any]]:
    text = resources.files("safepeft.audit.fairness").joinpath("data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def builtin_records() -> list[dict[str, Any]]:
    """The built-in items as BBQ jsonl records."""
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, scenario in enumerate(load_scenarios()):
        dimension = scenario["dimension"]
        first_slot = seen.get(dimension, 0)
        seen[dimension] = first_slot + len(_CELLS)
        unknown = UNKNOWN_RESPONSES[number % len(UNKNOWN_RESPONSES)]
        for offset, cell in enumerate(_CELLS):
            records.append(_record(scenario, number, first_slot + offset, cell, unknown))
    return records


def _record(scenario: dict[str, Any], number: int, slot: int, cell: tuple, unknown: str) -> dict[str, Any]:
    condition, polarity, culprit = cell
    target, other = scenario["target"], scenario["other"]
    context = scenario["context"].format(first=target["mention"], second=other["mention"])
    context = context[0].upper() + context[1:]
    if culprit is not None:
        neg, pos = (target, other) if culprit == "target" else (other, target)
        context += " " + scenario["disambiguation"].format(neg=neg["ref"], pos=pos["ref"])
    # answer_info tags an answer with [vocabulary word, group], as BBQ does (the word defaults to the reference).
    roles = {"target": (f"The {target['ref']}", [target.get("word", target["ref"]), target["group"]]),
             "other": (f"The {other['ref']}", [other.get("word", other["ref"]), other["group"]]),
             "unknown": (unknown, [unknown, "unknown"])}
    correct = _correct(cell)
    order = list(_orders()[slot % len(_orders())])
    return {
        "example_id": slot,
        "question_index": str(number + 1),
        "question_polarity": polarity,
        "context_condition": condition,
        "category": scenario["dimension"],
        "answer_info": {f"ans{i}": roles[role][1] for i, role in enumerate(order)},
        "additional_metadata": {"subcategory": "None", "stereotyped_groups": scenario["stereotyped_groups"],
                                "version": "safepeft-builtin", "source": "safepeft"},
        "context": context,
        "question": scenario[f"{'negative' if polarity == 'neg' else 'non_negative'}_question"],
        **{f"ans{i}": roles[role][0] for i, role in enumerate(order)},
        "label": order.index(correct),
    }


@functools.cache
def _orders() -> tuple[tuple[str, ...], ...]:
    """Answer orders for two scenarios' 12 items: correct answer, 'unknown' and target each 4 times at A, B and C.

    The correct answer goes to position (slot + 2 * scenario) % 3; the first (in bit order) choice of how to place
    the two other answers that also balances 'unknown' and the target is used.
    """
    slots = [(slot, _correct(cell)) for slot, cell in enumerate(_CELLS * 2)]
    for flips in itertools.product((False, True), repeat=len(slots)):
        orders = []
        for (slot, correct), flip in zip(slots, flips, strict=True):
            rest = [r for r in ("target", "other", "unknown") if r != correct]
            order = rest[::-1] if flip else rest
            order.insert((slot + 2 * (slot // len(_CELLS))) % 3, correct)
            orders.append(tuple(order))
        if all(sorted(o.index(role) for o in orders) == sorted([0, 1, 2] * 4) for role in ("unknown", "target")):
            return tuple(orders)
    raise AssertionError("no balanced answer order exists")  # pragma: no cover - exists for the cells above


def _correct(cell: tuple) -> str:
    _, polarity, culprit = cell
    if culprit is None:
        return "unknown"
    if polarity == "neg":
        return culprit
    return "other" if culprit == "target" else "target"
