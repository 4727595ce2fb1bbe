"""Validate a judge against human labels: agreement, precision, recall and Cohen's kappa.

Label files: JailbreakBench's judge-comparison CSV (``goal``, ``target_response``, ``human_majority`` with 1 = the
model complied / was jailbroken), or any CSV/JSONL with a request column (``prompt``/``goal``/``behavior``), a
response column (``response``/``completion``/``generation``) and a 0/1 label (``label``/``harmful``; also
``true``/``false``, ``unsafe``/``safe``, ``yes``/``no``). Positive = harmful / complied. XSTest's completion files
(``model_completions/xstest_v2_completions_*.csv``) are read natively: ``final_label`` ``1_full_compliance`` is
complied (1); ``2_full_refusal`` and ``3_partial_refusal`` are not (0).

Every row also keeps its short columns (XSTest's ``type``, ...) and ``file`` (the file's stem, i.e. the model for
XSTest) as ``group``, so agreement can be broken down with ``--by COLUMN``.

A verdict the judge could not produce (unparseable output) counts as a negative prediction, so a broken judge is
penalised rather than quietly evaluated on fewer rows; how many there were is reported as ``n_unscored``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from safepeft.audit.judges.base import JudgeInput
from safepeft.audit.sources import field, read_table
from safepeft.errors import DataError
from safepeft.records.base import Spec

_TRUE = {"1", "1.0", "true", "yes", "unsafe", "harmful", "jailbroken", "complied"}
_FALSE = {"0", "0.0", "false", "no", "safe", "harmless", "refused", "not jailbroken"}
XSTEST_LABELS = {"1_full_compliance": 1, "2_full_refusal": 0, "3_partial_refusal": 0}
_TEXT_COLUMNS = {"prompt", "goal", "behavior", "request", "response", "completion", "generation", "target_response"}


class LabelledRow(Spec):
    """One human-labelled (request, response) pair."""

    prompt: str
    """The request (JailbreakBench: the behavior `goal`, not the jailbreak prompt)."""
    response: str
    """The model's response that was labelled."""
    label: int
    """1 = harmful / complied, 0 = not."""
    group: dict[str, str] = {}
    """Short columns of the row plus ``file`` (the file's stem), for per-group agreement (``--by``)."""


class JudgeEvalResult(BaseModel):
    """Judge-vs-human statistics (`safepeft judge-eval --format json` prints this object)."""

    judge: str
    n: int
    agreement: float
    precision: float | None
    recall: float | None
    kappa: float | None
    n_unscored: int
    confusion: dict[str, int]
    labels: str
    by: dict[str, dict[str, Any]] | None = None
    """Per-group statistics (``--by COLUMN``): group value -> n, agreement, precision, recall, kappa, confusion."""


def read_labels(path: str | Path) -> list[LabelledRow]:
    """Rows of a JailbreakBench judge-comparison file or a generic labelled file (see module docstring)."""
    path = Path(path)
    rows = read_table(path, "--labels")
    if not rows:
        raise DataError(f"{path} has no rows.", "Pass a file with (prompt, response, label) rows.")
    labelled = []
    for number, row in enumerate(rows, start=1):
        where = f"{path.name} row {number}"
        if not isinstance(row, dict):
            raise DataError(f"{where} is not a record with named columns.",
                            "Pass a CSV with a header or JSONL objects.")
        xstest = field(row, "final_label", default=None)
        if xstest is not None:
            raw = str(xstest).strip().lower()
            if raw not in XSTEST_LABELS:
                raise DataError(f"{where}: unknown final_label {raw!r}.",
                                f"XSTest labels are {', '.join(XSTEST_LABELS)}.")
            label = XSTEST_LABELS[raw]
        else:
            raw = str(field(row, "human_majority", "label", "harmful", "jailbroken", where=where)).strip().lower()
            if raw not in _TRUE | _FALSE:
                raise DataError(f"{where}: label {raw!r} is not 0/1.", "Use 1 = harmful/complied, 0 = not.")
            label = int(raw in _TRUE)
        group = {str(k).strip().lower(): str(v) for k, v in row.items()
                 if k is not None and str(k).strip().lower() not in _TEXT_COLUMNS and len(str(v)) <= 64}
        labelled.append(LabelledRow(
            prompt=str(field(row, "goal", "prompt", "behavior", "request", where=where)),
            response=str(field(row, "target_response", "response", "completion", "generation", where=where)),
            label=label, group={**group, "file": path.stem},
        ))
    return labelled


def confusion(predicted: Sequence[bool], truth: Sequence[bool]) -> tuple[int, int, int, int]:
    """(true positives, false positives, false negatives, true negatives)."""
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    return tp, fp, fn, len(truth) - tp - fp - fn


def evaluate_judge(judge: Any, rows: Sequence[LabelledRow], labels_name: str = "",
                   by: str | None = None) -> JudgeEvalResult:
    """Judge every row and compare with the human label (also per value of the ``by`` column, if given)."""
    if by is not None and rows and by.lower() not in rows[0].group:
        raise DataError(f"--by {by}: the label file has no column {by!r}.",
                        f"Use one of: {', '.join(sorted(rows[0].group))}.")
    verdicts = judge.judge([JudgeInput(prompt=row.prompt, completion=row.response) for row in rows])
    predicted = [bool(v.harmful) for v in verdicts]
    truth = [bool(row.label) for row in rows]
    groups = None
    if by is not None:
        groups = {}
        for value in sorted({row.group[by.lower()] for row in rows}):
            members = [i for i, row in enumerate(rows) if row.group[by.lower()] == value]
            groups[value] = _stats([predicted[i] for i in members], [truth[i] for i in members])
    return JudgeEvalResult(judge=judge.name, **_stats(predicted, truth),
                           n_unscored=sum(v.harmful is None for v in verdicts), labels=labels_name, by=groups)


def _stats(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, Any]:
    tp, fp, fn, tn = confusion(predicted, truth)
    return {"n": len(truth), "agreement": (tp + tn) / len(truth),
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "kappa": cohen_kappa(tp, fp, fn, tn), "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}


def cohen_kappa(tp: int, fp: int, fn: int, tn: int) -> float | None:
    """Cohen's kappa of a 2x2 table; None when chance agreement is 1 (both raters constant and equal)."""
    n = tp + fp + fn + tn
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)
