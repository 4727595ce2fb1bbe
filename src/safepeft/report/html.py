"""One self-contained HTML page: inline CSS and SVG, no scripts, and a CSP that forbids any network fetch."""

from __future__ import annotations

from html import escape

from safepeft.report import svg, text
from safepeft.report.build import label_of
from safepeft.report.model import Cell, Column, Example, Matrix, ReportData, VariantInfo

CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--bad:#b3261e;--good:#1a7f37}
*{box-sizing:border-box}body{margin:0;color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif;background:#fff}main{max-width:1280px;margin:0 auto;padding:24px 28px 60px}
header h1{margin:0 0 4px;font-size:24px}header p{margin:2px 0;color:var(--muted)}
nav{margin:14px 0 6px;display:flex;flex-wrap:wrap;gap:6px}nav a{padding:3px 10px;border:1px solid var(--line);
border-radius:14px;color:var(--ink);text-decoration:none;font-size:13px}nav a:hover{background:var(--bg)}
section{margin-top:30px;border-top:1px solid var(--line);padding-top:8px}h2{font-size:19px;margin:10px 0 6px}
h3{font-size:15px;margin:18px 0 6px}.lead{color:var(--muted);margin:0 0 12px;max-width:900px}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:5px 8px;vertical-align:top;text-align:left}
thead th{background:var(--bg);position:sticky;top:0}th small{display:block;font-weight:normal;color:var(--muted)}
td.num{text-align:right;white-space:nowrap}.ci{display:block;color:var(--muted);font-size:11px}
.d{display:block;font-size:12px;color:var(--muted)}.d.worse{color:var(--bad);font-weight:600}
.d.better{color:var(--good);font-weight:600}.d .ci{font-weight:normal}.note{color:var(--muted);font-size:12px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;background:var(--bg);border:1px solid var(--line);
color:var(--muted);font-size:12px}.redacted{font-style:italic;color:var(--muted)}
details{margin:6px 0;border:1px solid var(--line);border-radius:6px;padding:4px 10px}
summary{cursor:pointer;font-weight:600}blockquote{margin:6px 0;padding:6px 10px;background:var(--bg);
border-left:3px solid var(--line);white-space:pre-wrap;word-break:break-word}
pre.completion{white-space:pre-wrap;word-break:break-word;margin:0;max-height:220px;overflow:auto}
code{font-size:12px;word-break:break-all}.banner{margin:10px 0;padding:8px 12px;border-radius:6px;
background:#fff8c5;border:1px solid #d4a72c}figure{margin:6px 0 16px}svg text{dominant-baseline:auto}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(data: ReportData) -> str:
    """One self-contained HTML page with inline SVG charts (the default)."""
    names = [v.name for v in data.variants]
    body = [
        _header(data),
        _section("summary", _summary(data)),
        *([_section("efficacy", _efficacy(data))] if data.efficacy is not None else []),
        _section("heatmap", _charts(data.heatmaps, lambda m, i: svg.heatmap(m, names, f"heat{i}"),
                                    "No safety suite in these results.")),
        _section("fairness", _charts(data.fairness, lambda m, i: svg.bars(m, names, percent=False),
                                     "No fairness (BBQ) suite in these results.")),
        _section("attacks", _charts(data.attacks, lambda m, i: svg.bars(m, names, percent=True),
                                    "No jailbreak suite in these results.")),
        _section("tradeoff", _tradeoff(data)),
        _section("examples", _examples(data)),
        _section("provenance", _provenance(data.variants)),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(data.title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(body) + "</main></body></html>\n"
    )


LEADS = {
    "summary": "Headline metric of each suite with its 95% CI. Below each value: the change against the variant's "
               "base with a paired-bootstrap 95% CI (items paired by id). ▲/▼ marks a significant change "
               "(CI excludes 0); ✓ an improvement, ✗ a regression.",
    "efficacy": "How much of the safety a fine-tune lost each repair gives back, on the test split of the items "
                "(each repair's hyper-parameter was chosen on the validation split). recovery = (H_ft − H_repaired) "
                "/ (H_ft − H_aligned); utility kept = U_repaired / U_ft; 95% CIs pair items across variants. "
                "▼ marks a safety-rate change whose CI excludes 0.",
    "heatmap": "Safety rate per hazard category (MLCommons / Llama Guard 2 taxonomy): the share judged harmful "
               "under a harm judge, the share that did not refuse under a refusal judge (the title says which). "
               "Hover a cell for its 95% CI.",
    "fairness": "BBQ bias scores per demographic dimension (positive: answers follow the stereotype, negative: "
                "against it, 0: no bias), with 95% CIs.",
    "attacks": "Attack success rate per jailbreak attack (success: what the judge counts, see the title), with "
               "95% CIs; “any attack” counts a behaviour once if any attack succeeded.",
    "tradeoff": "Each variant's harm against its utility. Red points form the Pareto front: no other variant is "
                "at least as useful and at most as harmful.",
    "examples": "Prompts per category, with each variant's verdict. Prompts where variants disagree come first.",
    "provenance": "What produced each result: models, adapters and their hyper-parameters, fingerprints, judge, "
                  "guard, library versions.",
}


def _section(section_id: str, content: str) -> str:
    title = dict(text.SECTIONS)[section_id]
    return (f'<section id="{section_id}"><h2>{escape(title)}</h2><p class="lead">{escape(LEADS[section_id])}</p>'
            f"{content}</section>")


def _header(data: ReportData) -> str:
    links = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in text.SECTIONS
                    if sid != "efficacy" or data.efficacy is not None)
    banner = ('<p class="banner">Completions are <b>redacted</b>; prompts are shown. Re-run with '
              "<code>--show-completions</code> to include model outputs.</p>" if data.redacted else
              '<p class="banner">This report <b>includes model completions</b>, which may contain harmful '
              "text. Share it with care.</p>")
    return (f"<header><h1>{escape(data.title)}</h1><p>{len(data.variants)} variant(s) · generated "
            f"{escape(data.generated)} by safepeft</p>{banner}<nav>{links}</nav></header>")


def _summary(data: ReportData) -> str:
    if not data.columns:
        return '<p class="note">No suite with a known headline metric in these results.</p>'
    head = "".join(f"<th>{escape(c.label)}<small>{escape(c.suite)} · {escape(c.metric)}</small></th>"
                   for c in data.columns)
    rows = []
    for row in data.summary:
        base = escape(row.base) if row.base else '<span class="note">none</span>'
        cells = "".join(_cell(row.cells[c.key], c) for c in data.columns)
        rows.append(f"<tr><th>{escape(row.variant)}</th><td>{base}</td>{cells}</tr>")
    judges = "".join(f'<p class="note">{escape(line)}</p>' for line in text.judge_lines(data.variants))
    return (f'<div class="scroll"><table><thead><tr><th>variant</th><th>base</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{judges}')


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table></div>'


def _efficacy(data: ReportData) -> str:
    efficacy = data.efficacy
    assert efficacy is not None
    parts = [f'<p class="note">{escape(text.efficacy_rate_note(efficacy))}</p>',
             "<h3>Drift of each fine-tune</h3>", _table(text.drift_head(efficacy), text.drift_rows(efficacy)),
             "<h3>Repairs</h3>", _table(text.efficacy_head(efficacy), text.efficacy_rows(efficacy))]
    if data.efficacy_scatter is not None:
        front = ", ".join(escape(n) for n in data.efficacy_scatter.front)
        parts.append(f'<figure class="scroll">{svg.scatter(data.efficacy_scatter)}</figure>'
                     f"<p>Pareto front: <b>{front}</b></p>")
    parts += [f'<p class="note">{escape(note)}</p>' for note in efficacy.notes]
    return "".join(parts)


def _cell(cell: Cell, column: Column) -> str:
    percent = text.is_percent(column)
    if cell.value is None:
        return f'<td class="num note">{escape(cell.note or "–")}</td>'
    parts = [text.value(cell.value, percent), f'<span class="ci">{text.interval(cell.ci95, percent)}</span>']
    if cell.corrected is not None:
        parts.append(f'<span class="ci">{escape(text.corrected(cell, percent))}</span>')
    if cell.delta is not None:
        css = f"d {cell.change}" if cell.significant else "d"
        parts.append(f'<span class="{css}">Δ {text.delta(cell.delta, percent)} {text.marker(cell)}'
                     f'<span class="ci">{text.delta_interval(cell.delta_ci95, percent)}</span></span>')
    note = f' title="{escape(cell.note)}"' if cell.note else ""
    flag = " *" if cell.note and cell.delta is not None else ""
    return f'<td class="num"{note}>{"".join(parts)}{flag}</td>'


def _charts(matrices: list[Matrix], draw, empty: str) -> str:
    if not matrices:
        return f'<p class="note">{escape(empty)}</p>'
    return "".join(f'<h3>{escape(m.title)}</h3><figure class="scroll">{draw(m, i)}</figure>'
                   for i, m in enumerate(matrices))


def _tradeoff(data: ReportData) -> str:
    note = f'<p class="note">{escape(data.scatter_note)}</p>' if data.scatter_note else ""
    if data.scatter is None:
        return note
    front = ", ".join(escape(n) for n in data.scatter.front)
    return (f'<figure class="scroll">{svg.scatter(data.scatter)}</figure>'
            f"<p>Pareto front: <b>{front}</b></p>{note}")


def _examples(data: ReportData) -> str:
    if not data.examples:
        return '<p class="note">No per-item samples in these results.</p>'
    groups: dict[tuple[str, str], list[Example]] = {}
    for example in data.examples:
        groups.setdefault((example.suite, example.category), []).append(example)
    out = []
    for (suite, category), examples in groups.items():
        items = "".join(_example(e, data.redacted) for e in examples)
        out.append(f"<details><summary>{escape(suite)} · {escape(label_of(category))} "
                   f'<span class="pill">{len(examples)} prompt(s)</span></summary>{items}</details>')
    return "".join(out)


def _example(example: Example, redacted: bool) -> str:
    rows = []
    for row in example.rows:
        if redacted:
            completion = f'<span class="redacted">{escape(text.REDACTED.format(n=row.completion_chars))}</span>'
        else:
            completion = f'<pre class="completion">{escape(row.completion or "")}</pre>'
        score = "" if row.score is None else f"{row.score:g}"
        rows.append(f"<tr><td>{escape(row.variant)}</td><td>{escape(row.label or '–')}</td>"
                    f'<td class="num">{score}</td><td>{completion}</td></tr>')
    return (f"<blockquote>{escape(example.prompt)}</blockquote><table><thead><tr><th>variant</th><th>verdict</th>"
            f"<th>score</th><th>completion</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _provenance(variants: list[VariantInfo]) -> str:
    head = ("<tr><th>variant</th><th>base (rule)</th><th>model</th><th>model fingerprint</th><th>adapter</th>"
            "<th>adapter fingerprint</th><th>judge</th><th>guard</th></tr>")
    rows, details = [], []
    for v in variants:
        base = f"{escape(v.base)} ({escape(v.base_rule)})" if v.base else "none"
        rows.append(
            f"<tr><th>{escape(v.name)}</th><td>{base}</td><td><code>{escape(v.model['spec'])}</code></td>"
            f"<td><code>{escape(str(v.model.get('fingerprint')))}</code></td><td>{_ref(v.adapter, 'spec')}</td>"
            f"<td>{_ref(v.adapter, 'fingerprint')}</td><td>{_ref(v.judge, 'spec')}</td>"
            f"<td>{_ref(v.guard, 'spec')}</td></tr>"
        )
        pairs = text.flatten({"model": v.model, "adapter": v.adapter, "judge": v.judge, "guard": v.guard,
                              "provenance": v.provenance, "results": v.path, "notes": v.notes or None})
        body = "".join(f"<tr><th>{escape(k)}</th><td><code>{escape(t)}</code></td></tr>" for k, t in pairs
                       if t not in ("null", "{}", "[]"))
        details.append(f"<details><summary>{escape(v.name)}</summary><table>{body}</table></details>")
    return (f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'
            f'<h3>Details per variant</h3>{"".join(details)}')


def _ref(ref: dict | None, key: str) -> str:
    if ref is None or ref.get(key) is None:
        return '<span class="note">–</span>'
    return f"<code>{escape(str(ref[key]))}</code>"
