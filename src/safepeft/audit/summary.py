"""Console tables of an AuditResults that fit a terminal width (80 by default) without cutting a number.

One table per suite (overall row first, then one row per category); jailbreak suites get a second table with the
rates per attack. A table that would be wider than the console first puts each 95% CI under its value, then splits
its metric columns over several tables. Metric names longer than their column are abbreviated, and a legend under
the table spells them out. Numbers are never wrapped, folded or ellipsised: a column is always as wide as its
widest number.

A suite judged by a judge says under its table what the rate of the judge's positive verdict counts
(``compliance_rate: did not refuse`` under a refusal judge, ``harmful_rate: harmful content given`` under a harm
judge), and the first line names the judge and its measured agreement with human labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from safepeft.records.results import (
    MEASURE_LABELS,
    AuditResults,
    CategoryResult,
    Metric,
    SuiteResult,
    judge_summary,
    safety_rate,
)

WIDTH = 80


def format_metric(metric: Metric, sep: str = " ") -> str:
    """``0.12 [0.05,0.20]``; ``sep="\\n"`` puts the interval on a second line."""
    if metric.value is None:
        return "-"
    if metric.ci95 is None:
        return f"{metric.value:.2f}"
    low, high = metric.ci95
    return f"{metric.value:.2f}{sep}[{low:.2f},{high:.2f}]"


def abbreviate(names: Sequence[str]) -> dict[str, str]:
    """Short, unique column headers: the initials of each ``_``-separated word (over_refusal_rate -> ORR)."""
    short: dict[str, str] = {}
    for name in names:
        base = "".join(word[0] for word in name.split("_") if word).upper() or name[:3]
        candidate, index = base, 2
        while candidate in short.values():
            candidate, index = f"{base}{index}", index + 1
        short[name] = candidate
    return short


def _table(title: str, label: str, rows: list[tuple[str, CategoryResult, bool]], names: list[str],
           sep: str) -> tuple[Table, dict[str, str]]:
    """A table of ``rows`` (label, part, bold) over the metrics ``names``, and the abbreviations it used."""
    missing = Metric(value=None)
    cells = {m: [format_metric(part.metrics.get(m, missing), sep) for _, part, _ in rows] for m in names}
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column(label, overflow="fold")  # labels are names, not numbers: folding one loses nothing
    table.add_column("n", justify="right", no_wrap=True)
    short = abbreviate(names)
    used: dict[str, str] = {}
    for metric in names:
        width = max(len(line) for cell in cells[metric] for line in cell.split("\n"))
        header = metric
        if len(metric) > max(width, 4):
            header = used[metric] = short[metric]
        table.add_column(header, justify="right", no_wrap=True, min_width=max(width, len(header)))
    for index, (name, part, bold) in enumerate(rows):
        table.add_row(name, str(part.n), *(cells[m][index] for m in names), style="bold" if bold else None)
    return table, used


def _fits(table: Table, width: int) -> bool:
    console = Console(width=10_000)  # the natural width, measured unconstrained
    return Measurement.get(console, console.options, table).maximum <= width


def _legend(used: dict[str, str], has_ci: bool) -> Text | None:
    parts = [f"{short} = {name}" for name, short in used.items()]
    if has_ci:
        parts.append("cells: value [95% CI]")
    return Text("; ".join(parts), style="dim") if parts else None


def fitted_tables(title: str, label: str, rows: list[tuple[str, CategoryResult, bool]], names: list[str],
                  width: int = WIDTH) -> list[RenderableType]:
    """``rows`` x ``names`` as one or more tables, each at most ``width`` columns wide, with their legends."""
    has_ci = any(part.metrics.get(m) is not None and part.metrics[m].ci95 is not None
                 for _, part, _ in rows for m in names)
    table, used = _table(title, label, rows, names, " ")
    if _fits(table, width) or not names:
        return [Group(table, *filter(None, [_legend(used, has_ci)]))]
    # Too wide: intervals under their values, then as many metric columns per table as fit.
    out: list[RenderableType] = []
    start = 0
    while start < len(names):
        count = 1
        while start + count < len(names):
            wider, _ = _table(title, label, rows, names[start:start + count + 1], "\n")
            if not _fits(wider, width):
                break
            count += 1
        chunk = names[start:start + count]
        part_title = title if start == 0 else f"{title} (continued)"
        table, used = _table(part_title, label, rows, chunk, "\n")
        out.append(Group(table, *filter(None, [_legend(used, has_ci)])))
        start += count
    return out


def suite_tables(name: str, result: SuiteResult, width: int = WIDTH) -> list[RenderableType]:
    """Category, n and every metric (value [95% CI]) of one suite; jailbreak suites add the rates per attack."""
    overall = CategoryResult(n=result.n, metrics=result.metrics)
    rows = [("all", overall, True), *((c, part, False) for c, part in result.by_category.items())]
    tables = fitted_tables(f"{name} ({result.kind}, n={result.n})", "category", rows, list(result.metrics), width)
    if result.by_attack:
        attack_rows = [(attack, part, False) for attack, part in result.by_attack.items()]
        names = list(dict.fromkeys(m for part in result.by_attack.values() for m in part.metrics))
        tables += fitted_tables(f"{name}: ASR by attack", "attack", attack_rows, names, width)
    caption = judge_caption(result)
    return tables + ([Text(caption, style="dim")] if caption else [])


def judge_caption(result: SuiteResult) -> str | None:
    """'compliance_rate: did not refuse (judge classifier)': what the suite's verdict rate counts, or None for a
    suite without judge verdicts (or written before results.json recorded the judge per suite)."""
    if result.judge is None:
        return None
    found = safety_rate(result)
    rate = found[0] if found is not None else "asr"
    return f"{rate}: {MEASURE_LABELS[result.judge.measures]} (judge {result.judge.spec})"


def results_tables(results: AuditResults, width: int = WIDTH) -> list[RenderableType]:
    """The judge line (who decided, what it measures, its agreement with human labels), then every suite's
    tables in the order the suites ran."""
    head: list[RenderableType] = [Text(judge_summary(results.judge))] if results.judge is not None else []
    return head + [table for name, result in results.suites.items() for table in suite_tables(name, result, width)]
