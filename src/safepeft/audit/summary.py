"""Rich tables of an AuditResults: one table per suite, overall row first, then one row per category."""

from __future__ import annotations

from rich.table import Table

from safepeft.records.results import AuditResults, Metric, SuiteResult


def format_metric(metric: Metric) -> str:
    if metric.value is None:
        return "-"
    if metric.ci95 is None:
        return f"{metric.value:.2f}"
    low, high = metric.ci95
    return f"{metric.value:.2f} [{low:.2f},{high:.2f}]"


def suite_table(name: str, result: SuiteResult) -> Table:
    """Category, n and every metric (value [95% CI]) of one suite."""
    names = list(result.metrics)
    table = Table(title=f"{name} ({result.kind}, n={result.n})", title_justify="left")
    table.add_column("category", no_wrap=True)
    table.add_column("n", justify="right")
    for metric in names:
        table.add_column(metric, justify="right")
    table.add_row("all", str(result.n), *(format_metric(result.metrics[m]) for m in names), style="bold")
    for category, part in result.by_category.items():
        missing = Metric(value=None)
        table.add_row(category, str(part.n), *(format_metric(part.metrics.get(m, missing)) for m in names))
    return table


def results_tables(results: AuditResults) -> list[Table]:
    return [suite_table(name, result) for name, result in results.suites.items()]
