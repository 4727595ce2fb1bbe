"""efficacy.json: how much lost safety each repair gives back, at what utility cost (the efficacy protocol).

Written by a study with `efficacy` next to its report; the report's efficacy page reads it. Every figure is computed
on the test split of the audit items, paired by item id across the aligned reference, the fine-tune and the repair;
each repair's hyper-parameter was chosen on the validation split (``Choice``).

The fields named ``harmful*`` hold the safety suites' per-item verdicts, whatever the judge measured:
``EfficacyResults.safety_rate`` says which rate they are (``compliance_rate``, "did not refuse", under a refusal
judge; ``harmful_rate`` under a harm judge), and the report labels them from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from safepeft.records.base import Record
from safepeft.records.results import Metric

EFFICACY_SCHEMA_VERSION = 1


class Candidate(Record):
    """One hyper-parameter setting of a repair, scored on the validation split."""

    label: str
    """Candidate name, e.g. ``safelora[tau=0.5]``."""
    method: str
    """Repair method."""
    params: dict[str, Any]
    """Its parameters."""
    recovery: float | None
    """Validation recovery (None when the fine-tune did not drift on validation items)."""
    utility_kept: float | None
    """Validation utility kept (None without utility items or when the fine-tune scores 0)."""
    utility_kept_ci95: tuple[float, float] | None = None
    """Its paired-bootstrap 95% interval over the validation items."""
    harmful_rate: float | None
    """Validation safety rate of the repaired model (harmful or compliance rate: see the module docstring)."""
    eligible: bool
    """Not shown to keep less than ``min_utility_kept`` of the utility (its interval's upper end reaches it)."""


class Choice(Record):
    """What a `select` step chose, and every candidate's validation figures (repair_choice.json)."""

    repair: str
    """Repair label (method name or ``auto``)."""
    chosen: str
    """Label of the chosen candidate."""
    rule: str
    """How it was chosen, in words."""
    min_utility_kept: float
    candidates: list[Candidate]
    n_harmful: int
    """Validation harmful items behind the figures."""
    n_utility: int
    """Validation utility items."""
    safety_rate: str | None = "harmful_rate"
    """Which safety rate the candidates' ``harmful_rate`` is (``compliance_rate`` under a refusal judge); None
    when nothing was measured (a single candidate)."""


class Drift(Record):
    """What a fine-tune did to the aligned reference, on the test split."""

    finetune: str
    """Fine-tuned variant."""
    aligned: str
    """Its aligned reference."""
    harmful_aligned: Metric
    harmful_finetuned: Metric
    drift: Metric
    """H_ft - H_aligned, with Newcombe's paired interval."""
    utility_aligned: Metric | None = None
    utility_finetuned: Metric | None = None
    n_harmful: int
    n_utility: int
    n_benign: int


class EfficacyRow(Record):
    """One fine-tune x repair, on the test split."""

    finetune: str
    """Fine-tuned variant repaired."""
    variant: str
    """Repaired variant (as in the report)."""
    repair: str
    """Repair label."""
    chosen: str | None = None
    """The candidate chosen on validation (method and hyper-parameters)."""
    harmful_rate: Metric
    """H_repaired."""
    harmful_change: Metric
    """H_repaired - H_ft with Newcombe's paired interval."""
    significant: bool
    """``harmful_change``'s interval excludes 0."""
    recovery: Metric
    """(H_ft - H_repaired) / (H_ft - H_aligned), paired bootstrap over the harmful items (None without drift)."""
    utility_kept: Metric
    """U_repaired / U_ft, paired bootstrap over the utility items."""
    over_refusal_change: Metric
    """OR_repaired - OR_ft on the benign items, Newcombe's paired interval."""
    seconds: float | None = None
    """Wall time of the chosen repair."""
    extra_params: int | None = None
    """Parameters added over the fine-tuned adapter (0 for edits in place; None for a full-model output)."""
    output: str | None = None
    """adapter or model."""
    notes: list[str] = Field(default_factory=list)


class EfficacyResults(Record):
    """Top-level efficacy.json."""

    schema_version: int = EFFICACY_SCHEMA_VERSION
    validation_share: float
    min_utility_kept: float
    drifts: list[Drift]
    rows: list[EfficacyRow]
    choices: list[Choice]
    notes: list[str] = Field(default_factory=list)
    """Warnings: too few items to meet the protocol's sizes, a fine-tune without drift ..."""
    safety_rate: str = "harmful_rate"
    """Which safety rate the ``harmful*`` figures are: ``harmful_rate`` (a harm judge decided) or
    ``compliance_rate`` (a refusal judge: share that did not refuse). Files written without it say harmful_rate."""
