"""The demo's HTML check (tests/report_html.py) on a report built in-process from fixture results: it passes on
the real page and fails on pages that lost a section, show a wrong number, a wrong base, or a completion."""

from __future__ import annotations

import pytest
from report_html import check_report_html, parse_html, summary_rows
from results_fixtures import MARKER, VARIANTS, build_variant

from safepeft.report import make_report
from safepeft.report.load import ManifestEntry, write_manifest

ORDER = ["base", "aligned", "lora", "lora+safelora", "lora+int8", "lora+guard"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A run directory as a study writes it: results per variant and variants.json in display order."""
    root = tmp_path_factory.mktemp("study")
    results = {}
    for name in ORDER:
        results[name] = build_variant(name)
        path = root / "variants" / name.replace("+", "-") / "results.json"
        path.parent.mkdir(parents=True)
        results[name].write(path)
    write_manifest(root, [ManifestEntry(name=n, results=f"variants/{n.replace('+', '-')}/results.json",
                                        base=VARIANTS[n][0]) for n in ORDER])
    return root, results


def _without_section(page, section_id):
    start = page.index(f'<section id="{section_id}">')
    return page[:start] + page[page.index("</section>", start) + len("</section>"):]


def _check(page, results, **kwargs):
    bases = {name: VARIANTS[name][0] for name in results}
    return check_report_html(page, results, bases, efficacy=False, **kwargs)


def test_the_check_passes_on_the_report_of_the_results(study_dir):
    root, results = study_dir
    doc = _check(make_report([root]), results)
    rows = summary_rows(doc)
    assert len(rows) == len(ORDER) and all(len(r.cells) == 5 for r in rows)  # five suites, one headline each
    _check(make_report([root], show_completions=True), results, redacted=False)


def test_the_check_reads_the_cells_it_claims_to():
    page = ("<html><body><section id='summary'><table><thead><tr><th>variant</th><th>base</th>"
            "<th>Harm<small>builtin · harmful_rate</small></th></tr></thead><tbody><tr><th>x</th><td>none</td>"
            "<td class='num'>12.5%<span class='ci'>[1.0%, 20.0%]</span><span class='d worse'>Δ +3.0 pp ▲✗"
            "<span class='ci'>[1.0 pp, 5.0 pp]</span></span></td></tr></tbody></table></section></body></html>")
    (row,) = summary_rows(parse_html(page))
    cell = row.cells["builtin · harmful_rate"]
    assert (row.variant, row.base, cell.own_text()) == ("x", None, "12.5%")
    assert cell.kids("span")[1].own_text() == "Δ +3.0 pp ▲✗"


@pytest.mark.parametrize(("what", "edit"), [
    ("a missing section", lambda p: _without_section(p, "fairness")),
    ("a wrong headline value", "value"),
    ("a wrong change", "delta"),
    ("a wrong base", lambda p: p.replace("<td>aligned</td>", "<td>base</td>", 1)),
    ("swapped variants", lambda p: p.replace("<th>lora+int8</th>", "<th>@@</th>").replace(
        "<th>lora+guard</th>", "<th>lora+int8</th>").replace("<th>@@</th>", "<th>lora+guard</th>")),
    ("a shown completion", lambda p: p.replace('<span class="redacted">', '<pre class="completion">', 1)
     .replace("chars]</span>", "chars]</pre>", 1)),
    ("a fingerprint changed", lambda p: p.replace("0f1e2d3c4b5a6978", "0f1e2d3c4b5a6979", 1)),
])
def test_the_check_fails_on_a_broken_page(study_dir, what, edit):
    root, results = study_dir
    page = make_report([root])
    if edit == "value":  # the first variant's first headline value, one digit up
        head, _, tail = page.partition('<td class="num">')
        number, rest = tail.split("%", 1)
        broken = f'{head}<td class="num">{float(number) + 0.4:.1f}%{rest}'
    elif edit == "delta":
        head, _, tail = page.partition("Δ ")
        number, rest = tail.split(" pp", 1)
        broken = f"{head}Δ {float(number) + 0.4:+.1f} pp{rest}"
    else:
        broken = edit(page)
    assert broken != page, what
    with pytest.raises(AssertionError):
        _check(broken, results)


def test_redacted_fixture_never_carries_the_marker(study_dir):
    root, results = study_dir
    assert MARKER not in make_report([root])


def test_the_study_check_passes_on_a_study_run(tmp_path):
    """check_study_report (the demo's) on a report a study writes, with the double step kinds (no ML)."""
    from report_html import check_study_report

    from safepeft.study.runner import run_study
    from safepeft.study.spec import parse_study

    study = {"name": "doubles", "models": [{"name": "m", "model": "embedded", "align": {}}],
             "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic", "grid": {"rank": [4, 8]}}],
             "repairs": ["safelora"], "quantize": ["int8-dynamic"], "audit": {"suites": ["builtin"]}}
    spec = parse_study(study)
    run_study(spec, tmp_path / "run", kinds="safepeft.study.doubles:DOUBLE_KINDS")
    variants = check_study_report(tmp_path / "run", spec, efficacy=False)
    assert "m/lora[rank=4]+safelora" in variants and "m/lora[rank=8]+int8-dynamic" in variants
    (tmp_path / "run" / "report.html").write_text(make_report([tmp_path / "run"]).replace(
        "<th>m/lora[rank=4]</th>", "<th>m/lora[rank=9]</th>", 1), encoding="utf-8")
    with pytest.raises(AssertionError):
        check_study_report(tmp_path / "run", spec, efficacy=False)


def test_numbers_take_their_unit_from_right_after_them():
    """A small-n note inside a change cell ("a 95% CI wider than 0.5") must not turn a bias score into percent."""
    from report_html import _number

    assert [_number(t) for t in ("12.5%", "+3.0 pp", "-0.120", "+0.222 ▲ (small n: a 95% CI wider than 0.5)")] == [
        0.125, 0.03, -0.12, 0.222]
