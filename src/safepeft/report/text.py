"""Number formatting shared by the HTML and Markdown renderers (rates as %, changes in percentage points)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from safepeft.intervals import SMALL_SAMPLE_RULE
from safepeft.records.results import judge_summary, rate_label, rate_word
from safepeft.report.model import Cell, Column

SECTIONS = (
    ("summary", "Summary"),
    ("efficacy", "Repair efficacy"),
    ("heatmap", "Hazard categories"),
    ("fairness", "Fairness (BBQ)"),
    ("attacks", "Jailbreak attacks"),
    ("tradeoff", "Safety vs utility"),
    ("examples", "Examples"),
    ("provenance", "Provenance"),
)
REDACTED = "[redacted, {n} chars]"
"""Stands in for a completion; the page header says how to include completions (--show-completions)."""


def is_percent(column: Column) -> bool:
    """Rates and accuracies read best as percentages; bias scores (-1..1) and ROUGE as plain numbers."""
    return column.kind != "fairness" and not column.metric.lower().startswith("rouge")


def value(x: float | None, percent: bool) -> str:
    if x is None:
        return "–"
    return f"{x * 100:.1f}%" if percent else f"{x:.3f}"


def interval(ci: tuple[float, float] | None, percent: bool, fmt: Callable[[float, bool], str] = value) -> str:
    """'[lo, hi]' with each bound written by ``fmt`` (``value``, or ``delta`` for a change's CI); '' without a CI."""
    if ci is None:
        return ""
    return f"[{fmt(ci[0], percent)}, {fmt(ci[1], percent)}]"


def delta(x: float | None, percent: bool) -> str:
    if x is None:
        return "–"
    return f"{x * 100:+.1f} pp" if percent else f"{x:+.3f}"


def delta_interval(ci: tuple[float, float] | None, percent: bool) -> str:
    return interval(ci, percent, delta)


def marker(cell: Cell) -> str:
    """▲ / ▼ for a significant increase / decrease, with ✓ / ✗ saying whether that is an improvement, and a warning
    when the change rests on too few items to tell it from noise."""
    if cell.delta is None:
        return ""
    arrow = f"{'▲' if cell.delta > 0 else '▼'}{'✓' if cell.change == 'better' else '✗'}" if cell.significant else ""
    small = f" (small n: {SMALL_SAMPLE_RULE})" if cell.small_sample else ""
    return (arrow + small).strip()


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested provenance as (dotted key, text) pairs; lists and scalars as compact JSON."""
    if isinstance(data, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in data.items():
            pairs.extend(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return pairs
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return [(prefix, text)]


def corrected(cell: Cell, percent: bool) -> str:
    """'judge-corrected X [lo, hi]' (Rogan–Gladen, judge error included), or '' when the judge has no error rates."""
    if cell.corrected is None:
        return ""
    return f"judge-corrected {value(cell.corrected, percent)} {interval(cell.corrected_ci95, percent)}".rstrip()


def judge_lines(variants: list[Any]) -> list[str]:
    """One line per distinct judge: which judge decided, what its verdict measures (so whether the safety rate is
    a compliance or a harmful rate), and its measured agreement with human labels."""
    lines, seen = [], set()
    for variant in variants:
        judge = variant.judge
        if not judge or judge.get("spec") in seen:
            continue
        seen.add(judge.get("spec"))
        line = judge_summary(judge)
        if (judge.get("params") or {}).get("accuracy"):
            line += " Rates also show a judge-corrected estimate (Rogan–Gladen) whose 95% CI includes judge error."
        lines.append(line)
    return lines


def _metric(metric: Any, percent: bool, change: bool = False) -> str:
    """A figure and its interval as one string ('–' when undefined)."""
    if metric is None or metric.value is None:
        return "–"
    shown = delta(metric.value, percent) if change else value(metric.value, percent)
    ci = interval(metric.ci95, percent, delta if change else value)
    return f"{shown} {ci}".strip()


def drift_head(efficacy: Any) -> list[str]:
    """Heads of the drift table, named after the safety rate the figures are (harmful / compliance)."""
    word = rate_word(efficacy.safety_rate)
    return ["fine-tune", "aligned", f"{word} (aligned)", f"{word} (fine-tuned)", "drift", "n harmful requests",
            "n utility", "n benign"]


def efficacy_head(efficacy: Any) -> list[str]:
    """Heads of the repairs table, named after the safety rate the figures are (harmful / compliance)."""
    word = rate_word(efficacy.safety_rate)
    return ["fine-tune", "repair", "chosen on validation", word, f"Δ {word}", "recovery", "utility kept",
            "Δ over-refusal", "seconds", "extra params"]


def efficacy_rate_note(efficacy: Any) -> str:
    """What H (the safety rate of the efficacy figures) is in these results."""
    return (f"H is the {rate_label(efficacy.safety_rate)} rate of the harmful requests "
            f"({efficacy.safety_rate}, named after what the judge measured).")


def drift_rows(efficacy: Any) -> list[list[str]]:
    return [[d.finetune, d.aligned, _metric(d.harmful_aligned, True), _metric(d.harmful_finetuned, True),
             _metric(d.drift, True, change=True), str(d.n_harmful), str(d.n_utility), str(d.n_benign)]
            for d in efficacy.drifts]


def efficacy_rows(efficacy: Any) -> list[list[str]]:
    """One row per fine-tune x repair; ▼ marks a safety-rate change whose 95% CI excludes 0."""
    rows = []
    for r in efficacy.rows:
        mark = (" ▼" if r.harmful_change.value < 0 else " ▲") if r.significant and r.harmful_change.value else ""
        extra = ("model" if r.output == "model" else "–") if r.extra_params is None else f"{r.extra_params:+,d}"
        rows.append([r.finetune, r.repair, r.chosen or "–", _metric(r.harmful_rate, True),
                     _metric(r.harmful_change, True, change=True) + mark, _metric(r.recovery, True),
                     _metric(r.utility_kept, True), _metric(r.over_refusal_change, True, change=True),
                     "–" if r.seconds is None else f"{r.seconds:.0f}", extra])
    return rows
