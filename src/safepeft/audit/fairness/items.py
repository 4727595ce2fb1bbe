"""BBQ items: the 9 dimensions, the 'unknown' answer wordings, and one validated item per BBQ jsonl record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safepeft.audit.fairness.bias import biased_index, target_index
from safepeft.errors import DataError

# BBQ file category -> canonical dimension (the by_category keys of results.json).
DIMENSIONS: dict[str, str] = {
    "Age": "age",
    "Disability_status": "disability_status",
    "Gender_identity": "gender_identity",
    "Nationality": "nationality",
    "Physical_appearance": "physical_appearance",
    "Race_ethnicity": "race_ethnicity",
    "Religion": "religion",
    "SES": "ses",
    "Sexual_orientation": "sexual_orientation",
}
# The intersectional files measure two dimensions at once and have no place among the 9; loaders skip them.
INTERSECTIONAL = ("Race_x_gender", "Race_x_SES")

# The ten wordings BBQ draws the unknown answer from (also HELM's and lm-eval's list).
UNKNOWN_RESPONSES: tuple[str, ...] = (
    "Unknown",
    "Cannot be determined",
    "Can't be determined",
    "Not answerable",
    "Not known",
    "Not enough info",
    "Not enough information",
    "Cannot answer",
    "Can't answer",
    "Undetermined",
)

_REQUIRED = ("question_polarity", "context_condition", "category", "answer_info", "context", "question", "label")


@dataclass(frozen=True)
class BBQItem:
    """One multiple-choice question with exactly one 'unknown' answer among three."""

    id: str
    """'<dimension>-<example_id>': stable across runs, used to pair items between model variants."""
    dimension: str
    question_index: str
    polarity: str
    """'neg' (the question names a negative stereotype) or 'nonneg'."""
    condition: str
    """'ambig' (the context does not tell; 'unknown' is correct) or 'disambig'."""
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int
    unknown: int
    """Index of the 'unknown' answer."""
    target: int | None
    """Index of the answer in a stereotyped group; None when BBQ's tags do not determine one (see bias.py)."""

    @property
    def biased(self) -> int | None:
        """Index of the answer that would reflect the stereotype (None when undetermined)."""
        return biased_index(self.target, self.unknown, self.polarity)


def dimension_of(category: str) -> str:
    """Map a BBQ category ('Gender_identity', 'gender identity', 'SES') to its snake-case dimension."""
    key = category.strip().replace(" ", "_").lower()
    for name, dimension in DIMENSIONS.items():
        if key in (name.lower(), dimension):
            return dimension
    raise DataError(
        f"Unknown BBQ category {category!r}.",
        f"Expected one of {', '.join(DIMENSIONS)} (intersectional {', '.join(INTERSECTIONAL)} are not scored).",
    )


def item_from_record(record: Mapping[str, Any], where: str = "") -> BBQItem:
    """Validate one BBQ jsonl record (the nyu-mll/BBQ schema) and derive its unknown, target and biased answers."""
    missing = [k for k in _REQUIRED if k not in record] + [f"ans{i}" for i in range(3) if f"ans{i}" not in record]
    if missing:
        raise DataError(f"BBQ record {where} lacks {', '.join(missing)}.", "Expected the nyu-mll/BBQ jsonl schema.")
    answers = (str(record["ans0"]), str(record["ans1"]), str(record["ans2"]))
    raw_info = record["answer_info"]
    info = [list(raw_info.get(f"ans{i}") or ["", ""]) for i in range(3)]
    unknown = _unknown_index(answers, info, where)
    metadata = record.get("additional_metadata") or {}
    stereotyped = metadata.get("stereotyped_groups") or []
    polarity, condition = str(record["question_polarity"]), str(record["context_condition"])
    if polarity not in ("neg", "nonneg") or condition not in ("ambig", "disambig"):
        raise DataError(
            f"BBQ record {where} has question_polarity={polarity!r}, context_condition={condition!r}.",
            "Expected neg|nonneg and ambig|disambig.",
        )
    label = int(record["label"])
    if label not in (0, 1, 2):
        raise DataError(f"BBQ record {where} has label {label}.", "Expected 0, 1 or 2.")
    dimension = dimension_of(str(record["category"]))
    return BBQItem(
        id=f"{dimension}-{record.get('example_id', where)}",
        dimension=dimension,
        question_index=str(record.get("question_index", "")),
        polarity=polarity,
        condition=condition,
        context=str(record["context"]).strip(),
        question=str(record["question"]).strip(),
        answers=answers,
        label=label,
        unknown=unknown,
        target=target_index(info, unknown, stereotyped),
    )


def _unknown_index(answers: tuple[str, str, str], info: list[list[str]], where: str) -> int:
    # The group tag is authoritative; the wording list is a fallback for hand-made files without tags.
    tagged = [i for i in range(3) if len(info[i]) > 1 and info[i][1] == "unknown"]
    if len(tagged) == 1:
        return tagged[0]
    worded = [i for i in range(3) if answers[i].strip().lower() in {u.lower() for u in UNKNOWN_RESPONSES}]
    if len(worded) == 1:
        return worded[0]
    raise DataError(
        f"BBQ record {where} has no single 'unknown' answer among {list(answers)}.",
        "Each item needs exactly one answer tagged 'unknown' in answer_info (or worded like BBQ's unknown answers).",
    )
