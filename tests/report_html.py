"""Read a safepeft HTML report back with the standard library's html.parser and check it against the results it
was built from: section order, the summary table's variants, bases, values and changes, the provenance
fingerprints, the Pareto front and redaction. Used by the demo's end-to-end test and unit-tested on fixture reports
(tests/report/test_report_html_check.py), so a check that cannot fail is caught without the slow run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

VOID = {"meta", "br", "img", "hr", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Any] = field(default_factory=list)  # Node | str

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def own_text(self) -> str:
        """Text directly inside this element, not inside its children."""
        return "".join(c for c in self.children if isinstance(c, str)).strip()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def first(self, tag: str, **attrs: str) -> Node:
        nodes = self.find_all(tag, **attrs)
        assert nodes, f"no <{tag} {attrs}> in <{self.tag} {self.attrs}>"
        return nodes[0]

    def kids(self, tag: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>: the page is not well nested"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], f"unclosed elements: {[n.tag for n in builder.stack[1:]]}"
    return builder.root


def _number(text: str) -> float:
    """'12.5%' -> 0.125, '+3.0 pp' -> 0.03, '-0.120' -> -0.12."""
    match = re.search(r"([-+−]?\d+(?:\.\d+)?)\s*(%|pp)?", text)
    assert match, f"no number in {text!r}"
    value = float(match.group(1).replace("−", "-"))
    # the unit right after the number: a note later in the cell ("a 95% CI ...") says nothing about it
    return value / 100 if match.group(2) else value


@dataclass
class SummaryRow:
    variant: str
    base: str | None
    cells: dict[str, Node]
    """'suite · metric' -> the <td> of that column."""


def summary_rows(doc: Node) -> list[SummaryRow]:
    table = doc.first("section", id="summary").first("table")
    header = table.first("thead").first("tr").kids("th")
    assert [h.text() for h in header[:2]] == ["variant", "base"], [h.text() for h in header[:2]]
    columns = [h.first("small").text() for h in header[2:]]
    rows = []
    for tr in table.first("tbody").kids("tr"):
        name, base, *cells = tr.kids("th") + tr.kids("td")
        assert len(cells) == len(columns), f"row {name.text()!r} has {len(cells)} cells for {len(columns)} columns"
        rows.append(SummaryRow(name.text(), None if base.text() == "none" else base.text(),
                               dict(zip(columns, cells, strict=True))))
    return rows


def check_report_html(page: str, results: dict[str, Any], bases: dict[str, str | None], *, efficacy: bool,
                      redacted: bool = True) -> Node:
    """Assert the page shows exactly ``results`` (variant name -> AuditResults, in display order) with ``bases``:
    every section in order, one summary row per variant with its recorded headline values and its change against
    its base, every variant's fingerprints, a Pareto front of known variants, and completions only if not
    ``redacted``. Returns the parsed page for further checks."""
    from safepeft.report.text import SECTIONS

    doc = parse_html(page)
    expected = [sid for sid, _ in SECTIONS if sid != "efficacy" or efficacy]
    sections = doc.find_all("section")
    found = [s.attrs["id"] for s in sections]
    assert found == expected, f"sections {found}, expected {expected}"
    titles = [s.first("h2").text() for s in sections]
    assert titles == [dict(SECTIONS)[sid] for sid in expected], f"section titles {titles}"
    links = [a.attrs["href"] for a in doc.first("nav").kids("a")]
    assert links == [f"#{sid}" for sid in expected], f"navigation links {links}"

    rows = summary_rows(doc)
    assert [r.variant for r in rows] == list(results), "summary rows are not the variants, in order"
    for row in rows:
        assert row.base == bases[row.variant], (row.variant, row.base, bases[row.variant])
        for column, td in row.cells.items():
            suite, metric = column.split(" · ")
            _check_cell(td, results, row, suite, metric)

    provenance = {tr.kids("th")[0].text(): tr.kids("td") for tr in
                  doc.first("section", id="provenance").first("tbody").kids("tr")}
    assert list(provenance) == list(results), f"provenance rows {list(provenance)}"
    for name, tds in provenance.items():
        assert tds[2].text() == str(results[name].model.fingerprint), f"{name}: model fingerprint {tds[2].text()}"
        adapter = results[name].adapter
        assert tds[4].text() == (str(adapter.fingerprint) if adapter and adapter.fingerprint else "–"), \
            f"{name}: adapter fingerprint {tds[4].text()}"

    tradeoff = doc.first("section", id="tradeoff")
    fronts = [p.first("b").text() for p in tradeoff.find_all("p") if p.own_text().startswith("Pareto front:")]
    if tradeoff.find_all("svg"):
        assert len(fronts) == 1 and fronts[0], "a trade-off chart without its Pareto front"
        assert set(fronts[0].split(", ")) <= set(results), fronts[0]
    completions = doc.find_all("pre", class_="completion")
    examples = doc.first("section", id="examples")
    if redacted:
        assert not completions, "completions shown in a redacted report"
        assert all(re.fullmatch(r"\[redacted, \d+ chars\]", s.text()) for s in examples.find_all("span",
                                                                                                   class_="redacted"))
    else:
        assert completions or not examples.find_all("details")
    return doc


def _check_cell(td: Node, results: dict[str, Any], row: SummaryRow, suite: str, metric: str) -> None:
    """The cell shows the recorded value and (against the base) value - base value, both as the page rounds them."""
    suites = results[row.variant].suites
    recorded = suites[suite].metrics.get(metric) if suite in suites else None
    if recorded is None or recorded.value is None:
        assert "note" in td.attrs.get("class", ""), f"{row.variant} {suite}/{metric}: a value where none exists"
        return
    shown = td.own_text()
    tolerance = 0.0005 + 1e-9  # half of the last digit shown: 0.1 pp of a rate, 0.001 of a plain number
    assert abs(_number(shown) - recorded.value) <= tolerance, (row.variant, suite, metric, shown, recorded.value)
    deltas = [s for s in td.kids("span") if "d" in s.attrs.get("class", "").split()]
    base = results.get(row.base) if row.base else None
    base_metric = base.suites[suite].metrics.get(metric) if base is not None and suite in base.suites else None
    if base_metric is None or base_metric.value is None:
        assert not deltas, f"{row.variant} {suite}/{metric}: a change without a base value"
        return
    assert len(deltas) == 1, f"{row.variant} {suite}/{metric}: no change shown against {row.base}"
    change = _number(deltas[0].own_text().removeprefix("Δ"))
    expected = _expected_change(suites[suite], base.suites[suite], metric, recorded.value, base_metric.value)
    assert abs(change - expected) <= 2 * tolerance, (row.variant, suite, metric, change, expected)


def check_study_report(run_dir: Path, spec: Any, *, efficacy: bool) -> set[str]:
    """A study run's report.html against the run's own records: one variant per audited variant of the study's DAG
    (``spec``, expanded again here), each with its recorded values, base and fingerprints (check_report_html), and
    with ``efficacy`` a repairs table of one row per row of efficacy.json. Returns the variant names."""
    from safepeft.records import load_results
    from safepeft.records.efficacy import EfficacyResults
    from safepeft.study.dag import expand

    manifest = json.loads((run_dir / "variants.json").read_text())["variants"]
    planned = {v.name for v in expand(spec).variants}
    assert {v["name"] for v in manifest} == planned, f"variants.json {[v['name'] for v in manifest]}"
    results = {v["name"]: load_results(run_dir / v["results"]) for v in manifest}
    bases = {v["name"]: v.get("base") for v in manifest}
    doc = check_report_html((run_dir / "report.html").read_text(encoding="utf-8"), results, bases, efficacy=efficacy)
    if efficacy:
        rows = EfficacyResults.model_validate_json((run_dir / "efficacy.json").read_text()).rows
        repairs = doc.first("section", id="efficacy").find_all("table")[-1]
        shown = [[td.text() for td in tr.kids("td")[:2]] for tr in repairs.first("tbody").kids("tr")]
        assert shown == [[r.finetune, r.repair] for r in rows] and rows, f"efficacy rows {shown}"
    return planned


def _expected_change(suite: Any, base_suite: Any, metric: str, value: float, base_value: float) -> float:
    """The change the page should show: the paired difference over the items both variants scored when per-item
    samples reproduce both values (it differs from value - base value when not every item is shared, or for a
    statistic that is not a mean, such as BBQ's bias score); the plain difference otherwise."""
    from safepeft.report.stats import consistent, paired_difference, statistic_for

    statistic = statistic_for(metric)
    if suite.samples and base_suite.samples and consistent(suite.samples, statistic, value) \
            and consistent(base_suite.samples, statistic, base_value):
        diff = paired_difference(suite.samples, base_suite.samples, statistic)
        if diff is not None:
            return diff.value
    return value - base_value
