"""The computed report: everything the HTML, Markdown and JSON renderers show, and nothing they compute."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from safepeft.records import Metric
from safepeft.records.base import Record
from safepeft.records.efficacy import EfficacyResults

Better = Literal["lower", "higher", "zero"]


class Column(Record):
    """One headline metric of one suite in the summary table."""

    key: str
    """Unique column id: ``<suite>/<metric>``."""
    suite: str
    """Suite name as in results.json."""
    kind: str
    """Suite kind (safety, overrefusal, jailbreak, fairness, utility)."""
    metric: str
    """Metric name as in results.json."""
    label: str
    """Header text."""
    better: Better
    """Which direction is an improvement (``zero``: closer to 0, as for bias scores)."""


class Cell(Record):
    """One variant's value in one column, and its change against the variant's base."""

    value: float | None = None
    """Metric value as recorded."""
    ci95: tuple[float, float] | None = None
    """Its 95% CI as recorded."""
    n: int | None = None
    """Items behind the value."""
    corrected: float | None = None
    """Judge-corrected (Rogan–Gladen) estimate, when the judge has measured error rates."""
    corrected_ci95: tuple[float, float] | None = None
    """Its 95% CI, including judge error."""
    delta: float | None = None
    """value - base value (None without a base or without the metric in the base)."""
    delta_ci95: tuple[float, float] | None = None
    """Paired-bootstrap 95% CI of the difference (None when it could not be computed; see note)."""
    n_pairs: int | None = None
    """Items paired by id behind the delta CI."""
    significant: bool = False
    """The delta CI excludes 0."""
    change: Literal["better", "worse"] | None = None
    """Direction of a significant change."""
    note: str | None = None
    """Why a delta or its CI is missing."""
    small_sample: bool = False
    """The delta rests on too few pairs to tell a change from noise (`safepeft.intervals.too_small`)."""


class SummaryRow(Record):
    variant: str
    base: str | None
    cells: dict[str, Cell]
    """Column key to cell."""


class Matrix(Record):
    """A variants x groups table of one metric (heatmap or grouped bars)."""

    title: str
    suite: str
    metric: str
    groups: list[str]
    """Column (category / dimension / attack) keys in display order."""
    group_labels: list[str]
    """Human labels of ``groups``."""
    values: dict[str, dict[str, Metric]]
    """Variant to group to metric (missing = not measured)."""
    counts: dict[str, dict[str, int]] = {}
    """Variant to group to the number of items behind the value (each cell shows it; one item is marked)."""


class Point(Record):
    variant: str
    x: float
    y: float
    on_front: bool


class Scatter(Record):
    """Safety (y) against utility (x, higher is better) with the Pareto front."""

    x_label: str
    y_label: str
    points: list[Point]
    front: list[str]
    """Variants on the Pareto front, by increasing x."""
    y_better: Literal["lower", "higher"] = "lower"
    """Which way y improves (harm: lower; recovery: higher)."""


class ExampleRow(Record):
    variant: str
    label: str | None
    score: float | None
    completion: str | None
    """None when redacted."""
    completion_chars: int
    """Length of the completion (shown when redacted)."""


class Example(Record):
    suite: str
    category: str
    id: str
    prompt: str
    rows: list[ExampleRow]


class VariantInfo(Record):
    """Provenance of one variant."""

    name: str
    base: str | None
    base_rule: str
    path: str
    model: dict[str, Any]
    adapter: dict[str, Any] | None
    judge: dict[str, Any] | None
    guard: dict[str, Any] | None
    provenance: dict[str, Any]
    notes: list[str]


class ReportData(Record):
    title: str
    generated: str
    redacted: bool
    """True when completions are left out (the default)."""
    variants: list[VariantInfo]
    columns: list[Column]
    summary: list[SummaryRow]
    heatmaps: list[Matrix] = Field(default_factory=list)
    fairness: list[Matrix] = Field(default_factory=list)
    attacks: list[Matrix] = Field(default_factory=list)
    scatter: Scatter | None = None
    scatter_note: str | None = None
    examples: list[Example] = Field(default_factory=list)
    efficacy: EfficacyResults | None = None
    """The efficacy protocol's figures (a study's efficacy.json), when the inputs have them."""
    efficacy_scatter: Scatter | None = None
    """Recovery (y) against utility kept (x) per fine-tune x repair, with the Pareto front."""
