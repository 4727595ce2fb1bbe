"""Turn loaded variants into ReportData: headline metrics, deltas against bases, charts' data, examples, provenance.

Which metric heads each suite kind (and which direction is better) is the table ``HEADLINES``; a kind not in the
table still appears in provenance but gets no summary column.

A safety suite's rate is ``compliance_rate`` (did not refuse) under a refusal judge and ``harmful_rate`` under a
harm judge (results.json before version 2: always ``harmful_rate``, read as written). Each name is its own column,
so a delta never compares a compliance rate with a harmful rate.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from safepeft.records import ArtifactRef, Metric, Sample, SuiteResult
from safepeft.records.efficacy import EfficacyResults
from safepeft.records.results import MEASURE_LABELS, SAFETY_RATES, rate_label, safety_rate
from safepeft.report.load import Variant
from safepeft.report.model import (
    Better,
    Cell,
    Column,
    Example,
    ExampleRow,
    Matrix,
    Point,
    ReportData,
    Scatter,
    SummaryRow,
    VariantInfo,
)
from safepeft.report.stats import consistent, paired_difference, pareto_front, statistic_for

# kind -> (metric names in order of preference, direction of improvement, header)
HEADLINES: dict[str, tuple[tuple[str, ...], Better, str]] = {
    "safety": (tuple(SAFETY_RATES.values()), "lower", "Safety rate"),  # labelled by ``rate_label``
    "overrefusal": (("over_refusal_rate",), "lower", "Over-refusal"),
    "jailbreak": (("asr",), "lower", "Attack success (ASR)"),
    "fairness": (("bias_ambig",), "zero", "BBQ bias (ambiguous)"),
    "utility": (("exact_match", "accuracy", "rougeL", "rouge_l", "rouge1"), "higher", "Utility"),
}
BBQ_DIMENSIONS = ("age", "disability_status", "gender_identity", "nationality", "physical_appearance",
                  "race_ethnicity", "religion", "ses", "sexual_orientation")
FAIRNESS_CHARTS = (("bias_ambig", "BBQ bias score, ambiguous contexts"),
                   ("bias_disambig", "BBQ bias score, disambiguated contexts"))
EXAMPLE_KINDS = ("safety", "overrefusal")
PROMPT_CHARS = 500
_HAZARD = re.compile(r"^S(\d+)(?:_|$)")


def build_report(variants: list[Variant], show_completions: bool = False, examples_per_category: int = 2,
                 title: str = "safepeft report", efficacy: EfficacyResults | None = None) -> ReportData:
    columns = _columns(variants)
    by_name = {v.name: v for v in variants}
    summary = [
        SummaryRow(variant=v.name, base=v.base,
                   cells={c.key: _cell(v, by_name.get(v.base) if v.base else None, c) for c in columns})
        for v in variants
    ]
    scatter, note = _scatter(variants, columns)
    return ReportData(
        title=title,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        redacted=not show_completions,
        variants=[_info(v) for v in variants],
        columns=columns,
        summary=summary,
        heatmaps=[_matrix(variants, c.suite, c.metric, f"{c.label} by hazard category · {c.suite}", "category",
                          hazard_order) for c in columns if c.kind == "safety"],
        fairness=[_matrix(variants, c.suite, metric, f"{text} · {c.suite}", "category", bbq_order)
                  for c in columns if c.kind == "fairness" for metric, text in FAIRNESS_CHARTS],
        attacks=[_attack_matrix(variants, c) for c in columns if c.kind == "jailbreak"],
        scatter=scatter,
        scatter_note=note,
        examples=_examples(variants, columns, show_completions, examples_per_category),
        efficacy=efficacy,
        efficacy_scatter=efficacy_scatter(efficacy) if efficacy is not None else None,
    )


def efficacy_scatter(efficacy: EfficacyResults) -> Scatter | None:
    """Recovery against utility kept, one point per fine-tune x repair that has both figures."""
    rows = [r for r in efficacy.rows if r.recovery.value is not None and r.utility_kept.value is not None]
    if not rows:
        return None
    # short labels (the chart clips long ones): the fine-tune's own name and the repair
    label = {r.variant: f"{r.finetune.rsplit('/', 1)[-1]}+{r.repair}" for r in rows}
    # pareto_front minimises its y: negate recovery, which is better high
    front = set(pareto_front([(label[r.variant], r.utility_kept.value, -r.recovery.value) for r in rows]))
    points = [Point(variant=label[r.variant], x=r.utility_kept.value, y=r.recovery.value,
                    on_front=label[r.variant] in front) for r in rows]
    ordered = [p.variant for p in sorted(points, key=lambda p: p.x) if p.on_front]
    return Scatter(x_label="Utility kept (U_repaired / U_ft)", y_label="Recovery of lost safety", points=points,
                   front=ordered, y_better="higher")


# -- summary ---------------------------------------------------------------------------------------------------------
def _columns(variants: list[Variant]) -> list[Column]:
    found: dict[tuple[str, str, str], Column] = {}
    for variant in variants:
        for suite_name, suite in variant.results.suites.items():
            if suite.kind not in HEADLINES:
                continue
            preferred, better, label = HEADLINES[suite.kind]
            metric = next((m for m in preferred if m in suite.metrics), next(iter(suite.metrics), None))
            if metric is None or (suite.kind, suite_name, metric) in found:
                continue
            found[(suite.kind, suite_name, metric)] = Column(
                key=f"{suite_name}/{metric}", suite=suite_name, kind=suite.kind, metric=metric,
                label=_label(suite, metric, label) if metric in preferred else f"{label} ({metric})", better=better,
            )
    order = list(HEADLINES)
    return sorted(found.values(), key=lambda c: (order.index(c.kind), c.suite))


def _label(suite: SuiteResult, metric: str, label: str) -> str:
    """'Compliance (did not refuse)' / 'Harmful' for a safety rate; the ASR says what its judge counted."""
    if metric in SAFETY_RATES.values():
        text = rate_label(metric)
        return text[0].upper() + text[1:]
    if suite.kind == "jailbreak" and suite.judge is not None:
        return f"{label.removesuffix(')')}, {MEASURE_LABELS[suite.judge.measures]})"
    return label


def _metric(variant: Variant, suite: str, metric: str) -> tuple[SuiteResult | None, Metric | None]:
    result = variant.results.suites.get(suite)
    return result, (result.metrics.get(metric) if result else None)


def _cell(variant: Variant, base: Variant | None, column: Column) -> Cell:
    suite, metric = _metric(variant, column.suite, column.metric)
    if metric is None or suite is None:
        return Cell(note="not measured")
    cell = Cell(value=metric.value, ci95=metric.ci95, n=suite.n, corrected=metric.corrected,
                corrected_ci95=metric.corrected_ci95)
    if base is None:
        return cell
    base_suite, base_metric = _metric(base, column.suite, column.metric)
    if base_suite is None or base_metric is None or base_metric.value is None or metric.value is None:
        other = safety_rate(base_suite) if base_suite is not None and column.kind == "safety" else None
        cell.note = (f"{base.name} measured {other[0]}, not {column.metric}, on {column.suite} (a judge that "
                     "measures something else): no change shown" if other is not None and other[0] != column.metric
                     else f"{base.name} has no {column.metric} on {column.suite}")
        return cell
    cell.delta = metric.value - base_metric.value
    statistic = statistic_for(column.metric)
    if not suite.samples or not base_suite.samples:
        cell.note = "no per-item samples, so no CI for the change"
    elif not (consistent(suite.samples, statistic, metric.value)
              and consistent(base_suite.samples, statistic, base_metric.value)):
        cell.note = f"per-item samples do not reproduce {column.metric}, so no CI for the change"
    else:
        diff = paired_difference(suite.samples, base_suite.samples, statistic)
        if diff is None:
            cell.note = f"no items in common with {base.name}"
        else:
            cell.delta, cell.delta_ci95, cell.n_pairs = diff.value, diff.ci95, diff.n_pairs
            cell.significant = diff.significant
            cell.small_sample = diff.too_small
            used = sum(statistic.columns(s) is not None for s in suite.samples)
            if diff.n_pairs < used:
                cell.note = f"change measured on the {diff.n_pairs} of {used} items shared with {base.name}"
    if cell.significant:
        cell.change = _direction(column.better, metric.value, base_metric.value, cell.delta)
    return cell


def _direction(better: Better, value: float, base_value: float, delta: float) -> str:
    if better == "zero":
        return "better" if abs(value) < abs(base_value) else "worse"
    improved = delta < 0 if better == "lower" else delta > 0
    return "better" if improved else "worse"


# -- charts ----------------------------------------------------------------------------------------------------------
def hazard_order(key: str) -> tuple[int, int, str]:
    """S1..S11 numerically, then other categories alphabetically, ``other`` last."""
    match = _HAZARD.match(key)
    if match:
        return (0, int(match.group(1)), key)
    return (2 if key == "other" else 1, 0, key)


def bbq_order(key: str) -> tuple[int, int, str]:
    return (0, BBQ_DIMENSIONS.index(key), key) if key in BBQ_DIMENSIONS else (1, 0, key)


def label_of(key: str) -> str:
    match = _HAZARD.match(key)
    words = key.replace("_", " ")
    return f"S{match.group(1)} {words.split(' ', 1)[1]}" if match and " " in words else words


def _matrix(variants: list[Variant], suite: str, metric: str, title: str, part: str, order) -> Matrix:
    values: dict[str, dict[str, Metric]] = {}
    counts: dict[str, dict[str, int]] = {}
    for variant in variants:
        result = variant.results.suites.get(suite)
        if result is None:
            continue
        table = result.by_category if part == "category" else (result.by_attack or {})
        values[variant.name] = {g: r.metrics[metric] for g, r in table.items() if metric in r.metrics}
        counts[variant.name] = {g: r.n for g, r in table.items() if metric in r.metrics}
    groups = sorted({g for row in values.values() for g in row}, key=order)
    return Matrix(title=title, suite=suite, metric=metric, groups=groups, group_labels=[label_of(g) for g in groups],
                  values=values, counts=counts)


def _attack_matrix(variants: list[Variant], column: Column) -> Matrix:
    matrix = _matrix(variants, column.suite, column.metric, f"{column.label} by attack · {column.suite}",
                     "attack", lambda key: (key != "direct", key))
    any_attack = {v.name: m for v in variants
                  if (m := _metric(v, column.suite, "any_attack_asr")[1]) is not None}
    if any_attack:
        for name, metric in any_attack.items():
            matrix.values.setdefault(name, {})["any_attack"] = metric
        matrix.groups.append("any_attack")
        matrix.group_labels.append("any attack")
    return matrix


def _scatter(variants: list[Variant], columns: list[Column]) -> tuple[Scatter | None, str | None]:
    safety = next((c for c in columns if c.kind == "safety"), None)
    utility = next((c for c in columns if c.kind == "utility"), None)
    overrefusal = next((c for c in columns if c.kind == "overrefusal"), None)
    if safety is None or (utility is None and overrefusal is None):
        return None, "Needs a safety suite and a utility (or over-refusal) suite."
    x_column = utility or overrefusal
    raw = []
    for variant in variants:
        y = _metric(variant, safety.suite, safety.metric)[1]
        x = _metric(variant, x_column.suite, x_column.metric)[1]
        if x is not None and y is not None and x.value is not None and y.value is not None:
            raw.append((variant.name, x.value if utility else 1.0 - x.value, y.value))
    if not raw:
        return None, "No variant has both a safety and a utility value."
    front = pareto_front(raw)
    x_label = f"{utility.metric} on {utility.suite}" if utility else f"1 − over-refusal on {overrefusal.suite}"
    points = [Point(variant=n, x=x, y=y, on_front=n in front) for n, x, y in raw]
    missing = len(variants) - len(raw)
    note = f"{missing} variant(s) without both values are not plotted." if missing else None
    return Scatter(x_label=x_label, y_label=f"{safety.metric} on {safety.suite}", points=points, front=front), note


# -- examples and provenance -----------------------------------------------------------------------------------------
def _examples(variants: list[Variant], columns: list[Column], show: bool, per_category: int) -> list[Example]:
    examples = []
    for column in columns:
        if column.kind not in EXAMPLE_KINDS:
            continue
        tables = {v.name: _first_by_id(v, column.suite) for v in variants}
        categories: dict[str, set[str]] = {}
        for table in tables.values():
            for sample in table.values():
                categories.setdefault(sample.category, set()).add(sample.id)
        for category in sorted(categories, key=hazard_order):
            ranked = sorted(categories[category], key=lambda i: (-_disagreement(tables, i), i))
            for item in ranked[:per_category]:
                examples.append(_example(column.suite, category, item, tables, show))
    return examples


def _first_by_id(variant: Variant, suite: str) -> dict[str, Sample]:
    result = variant.results.suites.get(suite)
    table: dict[str, Sample] = {}
    for sample in result.samples if result else []:
        table.setdefault(sample.id, sample)
    return table


def _disagreement(tables: dict[str, dict[str, Sample]], item: str) -> int:
    return len({(t[item].label, t[item].score) for t in tables.values() if item in t})


def _example(suite: str, category: str, item: str, tables: dict[str, dict[str, Sample]], show: bool) -> Example:
    rows, prompt = [], ""
    for name, table in tables.items():
        sample = table.get(item)
        if sample is None:
            continue
        prompt = prompt or sample.prompt
        text = sample.completion or ""
        rows.append(ExampleRow(variant=name, label=sample.label, score=sample.score,
                               completion=sample.completion if show else None, completion_chars=len(text)))
    short = prompt if len(prompt) <= PROMPT_CHARS else prompt[:PROMPT_CHARS] + " …"
    return Example(suite=suite, category=category, id=item, prompt=short, rows=rows)


def _info(variant: Variant) -> VariantInfo:
    results = variant.results
    return VariantInfo(
        name=variant.name, base=variant.base, base_rule=variant.base_rule, path=str(variant.path),
        model=_dump(results.model), adapter=_dump(results.adapter), judge=_dump(results.judge),
        guard=_dump(results.guard), provenance=results.provenance, notes=variant.notes,
    )


def _dump(ref: ArtifactRef | None) -> dict | None:
    return ref.model_dump(mode="json") if ref is not None else None
