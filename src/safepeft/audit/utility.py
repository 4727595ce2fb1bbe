"""Task utility: GSM8K-style exact match on the final number, and ROUGE-1/2/L for generation tasks.

Pure functions score one prediction; ``score_items`` runs a Generator over items and returns a ``SuiteResult`` of
kind ``utility`` (overall metrics with bootstrap CIs, per-item samples), so a fine-tune can show it learned its task.

The final number of a prediction is, in order: the first number after the last ``####`` (GSM8K's answer marker),
the number after the last "answer is" (what our built-in arithmetic data and most chat models write), or the last
number in the text. Numbers are compared as decimals after removing ``$`` and thousands separators, so "1,000",
"$1000" and "1000.00" match.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from safepeft.audit.metrics import bootstrap_mean
from safepeft.errors import DataError
from safepeft.records.generation import GenParams, Prompt
from safepeft.records.results import Sample, SuiteResult

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_ANSWER_IS = re.compile(r"answer is\s*:?\s*(-?\$?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
Scoring = Literal["exact_match", "rouge"]


@dataclass(frozen=True)
class UtilityItem:
    """One task item: the prompt sent to the model and the reference answer."""

    id: str
    prompt: Prompt
    reference: str
    category: str = "all"


def final_number(text: str) -> Decimal | None:
    """The answer number of a prediction or GSM8K reference (see module docstring), or None."""
    if "####" in text:
        found = _NUMBER.search(text.rsplit("####", 1)[1])
        candidate = found.group(0) if found else None
    else:
        stated = _ANSWER_IS.findall(text)
        numbers = _NUMBER.findall(text)
        candidate = stated[-1] if stated else (numbers[-1] if numbers else None)
    if candidate is None:
        return None
    try:
        return Decimal(candidate.replace("$", "").replace(",", ""))
    except InvalidOperation:
        return None


def exact_match(prediction: str, reference: str) -> bool:
    """True when both texts have a final number and the numbers are equal."""
    predicted, expected = final_number(prediction), final_number(reference)
    return predicted is not None and expected is not None and predicted == expected


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 (rouge-score, Porter stemming) of one prediction against its reference."""
    scores = _scorer().score(reference, prediction)
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


def score_items(generator: object, items: Sequence[UtilityItem], scoring: Scoring = "exact_match",
                params: GenParams | None = None, seed: int = 0) -> SuiteResult:
    """Generate for every item and score: ``exact_match`` (accuracy) or ``rouge`` (mean ROUGE-1/2/L F1)."""
    params = params or GenParams(max_new_tokens=256)
    outputs = generator.generate([item.prompt for item in items], params)  # type: ignore[attr-defined]
    per_item: dict[str, list[float | None]] = {}
    samples = []
    for item, output in zip(items, outputs, strict=True):
        if scoring == "exact_match":
            scores = {"exact_match": float(exact_match(output, item.reference))}
        else:
            scores = rouge(output, item.reference)
        for name, value in scores.items():
            per_item.setdefault(name, []).append(value)
        main = scores["exact_match" if scoring == "exact_match" else "rougeL"]
        prompt = item.prompt if isinstance(item.prompt, str) else item.prompt[-1]["content"]
        samples.append(Sample(id=item.id, category=item.category, prompt=prompt, completion=output, score=main,
                              extra={"reference": item.reference, **scores}))
    metrics = {name: bootstrap_mean(values, seed=seed) for name, values in per_item.items()}
    return SuiteResult(kind="utility", n=len(items), metrics=metrics, params={"scoring": scoring,
                       "max_new_tokens": params.max_new_tokens}, samples=samples)


def gsm8k_items(path: str | Path, limit: int | None = None) -> list[UtilityItem]:
    """Items from a GSM8K-format JSONL file (``question``, ``answer`` ending in ``#### N``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"GSM8K file not found: {path}.", "Pass the path of e.g. gsm8k/test.jsonl.")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(UtilityItem(f"gsm8k-{number}", row["question"], row["answer"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{number}: not a GSM8K row ({exc}).",
                            'Rows need "question" and "answer".') from exc
        if limit is not None and len(items) >= limit:
            break
    return items


@functools.lru_cache(maxsize=1)
def _scorer():  # noqa: ANN202 - rouge_score has no type hints
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
