"""The report as GitHub-flavoured Markdown, for CI logs and pull-request comments (tables, no charts)."""

from __future__ import annotations

from safepeft.report import text
from safepeft.report.build import label_of
from safepeft.report.model import Cell, Column, Matrix, ReportData


def render_markdown(data: ReportData) -> str:
    """GitHub-flavoured Markdown tables, for CI logs and pull requests."""
    lines = [f"# {data.title}", "", f"{len(data.variants)} variant(s), generated {data.generated} by safepeft.", ""]
    lines.append("Completions are redacted (use `--show-completions` to include them)." if data.redacted else
                 "**This report includes model completions, which may contain harmful text.**")
    lines += ["", "## Summary", "", _summary(data), "", *(line + "\n" for line in text.judge_lines(data.variants)),
              "Δ: change against the base, with its paired-bootstrap 95% CI; ▲/▼ significant (CI excludes 0), "
              "✓ improvement, ✗ regression.", ""]
    if data.efficacy is not None:
        lines += ["## Repair efficacy", "", text.efficacy_rate_note(data.efficacy), "",
                  _table(text.drift_head(data.efficacy), text.drift_rows(data.efficacy)), "",
                  _table(text.efficacy_head(data.efficacy), text.efficacy_rows(data.efficacy)), "",
                  *(note + "\n" for note in data.efficacy.notes)]
    lines += ["## Hazard categories", ""] + _matrices(data.heatmaps, True, "No safety suite.")
    lines += ["## Fairness (BBQ)", ""] + _matrices(data.fairness, False, "No fairness suite.")
    lines += ["## Jailbreak attacks", ""] + _matrices(data.attacks, True, "No jailbreak suite.")
    lines += ["## Safety vs utility", ""] + _tradeoff(data)
    lines += ["## Examples", ""] + _examples(data)
    lines += ["## Provenance", ""] + _provenance(data)
    return "\n".join(lines).rstrip() + "\n"


def _escape(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(map(_escape, head)) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(map(_escape, row)) + " |" for row in rows]
    return "\n".join(out)


def _summary(data: ReportData) -> str:
    if not data.columns:
        return "No suite with a known headline metric."
    head = ["variant", "base"] + [f"{c.label} ({c.suite})" for c in data.columns]
    rows = [[r.variant, r.base or "—"] + [_cell(r.cells[c.key], c) for c in data.columns] for r in data.summary]
    return _table(head, rows)


def _cell(cell: Cell, column: Column) -> str:
    percent = text.is_percent(column)
    if cell.value is None:
        return cell.note or "–"
    out = f"{text.value(cell.value, percent)} {text.interval(cell.ci95, percent)}"
    if cell.corrected is not None:
        out += f"; {text.corrected(cell, percent)}"
    if cell.delta is not None:
        out += f"; Δ {text.delta(cell.delta, percent)} {text.delta_interval(cell.delta_ci95, percent)}"
        out += f" {text.marker(cell)}".rstrip()
    return out


def _matrices(matrices: list[Matrix], percent: bool, empty: str) -> list[str]:
    if not matrices:
        return [empty, ""]
    out = []
    for matrix in matrices:
        rows = [[name] + [_matrix_cell(row[g].value, matrix.counts.get(name, {}).get(g), percent) if g in row else "–"
                          for g in matrix.groups]
                for name, row in matrix.values.items()]
        out += [f"### {matrix.title}", "", _table(["variant"] + matrix.group_labels, rows), ""]
    return out


def _matrix_cell(value: float | None, n: int | None, percent: bool) -> str:
    """A matrix cell with the number of items behind it; one item is a single verdict, marked as such."""
    shown = text.value(value, percent)
    if n is None:
        return shown
    return f"{shown} (n=1: one prompt)" if n == 1 else f"{shown} (n={n})"


def _tradeoff(data: ReportData) -> list[str]:
    out = []
    if data.scatter is not None:
        rows = [[p.variant, f"{p.x:.3f}", f"{p.y:.3f}", "yes" if p.on_front else ""] for p in data.scatter.points]
        out += [_table(["variant", data.scatter.x_label, data.scatter.y_label, "Pareto front"], rows), ""]
    if data.scatter_note:
        out += [data.scatter_note, ""]
    return out


def _examples(data: ReportData) -> list[str]:
    if not data.examples:
        return ["No per-item samples.", ""]
    out = []
    for example in data.examples:
        title = f"### {example.suite} · {label_of(example.category)} · {example.id}"
        out += [title, "", "> " + _escape(example.prompt), ""]
        rows = []
        for row in example.rows:
            completion = (text.REDACTED.format(n=row.completion_chars) if data.redacted else
                          (row.completion or ""))
            score = "" if row.score is None else f"{row.score:g}"
            rows.append([row.variant, row.label or "–", score, completion])
        out += [_table(["variant", "verdict", "score", "completion"], rows), ""]
    return out


def _provenance(data: ReportData) -> list[str]:
    out = []
    for v in data.variants:
        out += [f"### {v.name}", ""]
        pairs = text.flatten({"base": f"{v.base} ({v.base_rule})" if v.base else None, "model": v.model,
                              "adapter": v.adapter, "judge": v.judge, "guard": v.guard, "provenance": v.provenance,
                              "results": v.path})
        out += [_table(["key", "value"], [[k, t] for k, t in pairs if t not in ("null", "{}", "[]")]), ""]
    return out
