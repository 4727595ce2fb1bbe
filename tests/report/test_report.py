"""The report from fixture results: sections, redaction, formats, bases, deltas with paired CIs, Pareto front."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from results_fixtures import HAZARDS, MARKER, build_variant, write_variants
from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.errors import ConfigError, DataError
from safepeft.report import RENDERERS, make_report
from safepeft.report.build import build_report
from safepeft.report.load import ManifestEntry, load_variants, write_manifest
from safepeft.report.text import SECTIONS

runner = CliRunner()


def _data(inputs, **kwargs):
    return build_report(load_variants(inputs), **kwargs)


def test_html_has_every_section_and_redacts_by_default(results_dir):
    page = make_report([results_dir])
    # the efficacy section appears only with a study's efficacy.json
    assert re.findall(r'<section id="([a-z]+)"', page) == [sid for sid, _ in SECTIONS if sid != "efficacy"]
    assert MARKER not in page and "redacted" in page
    assert page.count("<svg") == 1 + 2 + 1 + 1  # heatmap, two BBQ charts, ASR, scatter
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for hazard in HAZARDS:
        assert f"S{hazard.split('_')[0][1:]} " in page


def test_show_completions_includes_them_in_every_format(results_dir):
    for fmt in RENDERERS.names():
        assert MARKER not in make_report([results_dir], fmt)
        assert MARKER in make_report([results_dir], fmt, show_completions=True)


def test_markdown_and_json_formats(results_dir):
    md = make_report([results_dir], "md")
    for sid, title in SECTIONS:
        assert (f"## {title}" in md) == (sid != "efficacy")  # efficacy only with a study's efficacy.json
    assert "| lora | aligned |" in md
    data = json.loads(make_report([results_dir], "json"))
    assert data["redacted"] is True
    assert {c["kind"] for c in data["columns"]} == {"safety", "overrefusal", "jailbreak", "fairness", "utility"}
    assert all(row["completion"] is None for ex in data["examples"] for row in ex["rows"])


@pytest.mark.parametrize("name", RENDERERS.names())
def test_renderer_contract(name, results_dir):
    """Every registered format renders the fixture report to non-empty text mentioning every variant."""
    render = RENDERERS.get(name)
    assert render.__doc__, "each renderer documents itself for `safepeft list report-formats`"
    text = render(_data([results_dir]))
    assert isinstance(text, str) and all(v in text for v in ("lora+safelora", "lora+guard", "aligned"))


def test_bases_declared_and_ordered_bases_first(results_dir):
    variants = load_variants([results_dir])
    assert [v.name for v in variants][:3] == ["base", "aligned", "lora"]
    bases = {v.name: (v.base, v.base_rule) for v in variants}
    assert bases["base"] == (None, "none") and bases["lora+int8"] == ("lora", "declared")


def test_base_by_same_model_and_cli_override(tmp_path):
    paths = write_variants(tmp_path, ["base", "lora"])
    for path in paths:  # drop the declared bases: the same-model rule must find the plain model
        results = json.loads(path.read_text())
        results["provenance"].pop("base_variant", None)
        results["model"] = {"spec": "embedded", "fingerprint": "same", "params": {}}
        path.write_text(json.dumps(results))
    bases = {v.name: (v.base, v.base_rule) for v in load_variants(paths)}
    assert bases == {"base": (None, "none"), "lora": ("base", "same model")}
    bases = {v.name: (v.base, v.base_rule) for v in load_variants(paths, default_base="lora")}
    assert bases["base"] == ("lora", "cli")
    with pytest.raises(ConfigError, match="--base 'nope'"):
        load_variants(paths, default_base="nope")


def test_declared_base_missing_from_report_is_noted(tmp_path):
    (path,) = write_variants(tmp_path, ["lora"])
    (variant,) = load_variants([path])
    assert variant.base is None and "not in this report" in variant.notes[0]


def test_manifest_lists_exactly_the_current_variants(tmp_path):
    write_variants(tmp_path / "steps", ["base", "aligned", "lora"])
    write_manifest(tmp_path, [ManifestEntry(name="B", results="steps/base/results.json"),
                              ManifestEntry(name="L", results="steps/lora/results.json", base="B")])
    variants = load_variants([tmp_path])
    assert [(v.name, v.base) for v in variants] == [("B", None), ("L", "B")]


def test_summary_deltas_are_paired_and_marked(results_dir):
    data = _data([results_dir])
    rows = {r.variant: r for r in data.summary}
    harm = rows["lora"].cells["builtin/harmful_rate"]
    assert harm.delta == pytest.approx(harm.value - rows["aligned"].cells["builtin/harmful_rate"].value)
    assert harm.significant and harm.change == "worse" and harm.delta_ci95[0] > 0
    assert rows["lora+safelora"].cells["builtin/harmful_rate"].change == "better"
    assert rows["base"].cells["builtin/harmful_rate"].delta is None
    bias = rows["lora"].cells["bbq-builtin/bias_ambig"]
    assert bias.delta_ci95 is not None and bias.n_pairs == 9 * 8 and bias.note is None
    assert rows["lora+int8"].cells["builtin/harmful_rate"].change is None  # a near-copy is not flagged


def test_paired_ci_is_tighter_than_combining_marginal_cis(results_dir):
    """The point of pairing: correlated variants give a CI narrower than the marginal CIs' half-widths combined."""
    rows = {r.variant: r for r in _data([results_dir]).summary}
    cell, base = rows["lora+safelora"].cells["builtin/harmful_rate"], rows["lora"].cells["builtin/harmful_rate"]

    def half(ci):
        return (ci[1] - ci[0]) / 2

    assert half(cell.delta_ci95) < (half(cell.ci95) ** 2 + half(base.ci95) ** 2) ** 0.5


def test_without_samples_the_delta_has_no_ci_and_says_why(tmp_path):
    paths = write_variants(tmp_path, ["aligned", "base"], with_samples=False)
    cell = {r.variant: r for r in _data(paths).summary}["aligned"].cells["builtin/harmful_rate"]
    assert cell.delta is not None and cell.delta_ci95 is None and "no per-item samples" in cell.note


def test_inconsistent_samples_give_no_made_up_ci(tmp_path):
    paths = write_variants(tmp_path, ["base", "aligned"])
    results = json.loads(paths[1].read_text())
    results["suites"]["builtin"]["metrics"]["harmful_rate"]["value"] = 0.5  # no longer the mean of the scores
    paths[1].write_text(json.dumps(results))
    cell = {r.variant: r for r in _data(paths).summary}["aligned"].cells["builtin/harmful_rate"]
    assert cell.delta_ci95 is None and "do not reproduce" in cell.note and not cell.significant


def test_heatmap_covers_the_eleven_categories_in_order(results_dir):
    (heatmap,) = _data([results_dir]).heatmaps
    assert heatmap.groups == HAZARDS and heatmap.group_labels[9] == "S10 suicide self harm"


def test_scatter_front(results_dir):
    scatter = _data([results_dir]).scatter
    assert scatter.front == ["lora+guard"]
    assert {p.variant for p in scatter.points if p.on_front} == {"lora+guard"}


def test_examples_prefer_disagreement_and_cover_each_category(results_dir):
    examples = _data([results_dir], examples_per_category=1).examples
    safety = [e for e in examples if e.suite == "builtin"]
    assert [e.category for e in safety] == HAZARDS
    assert all(len({(r.label, r.score) for r in e.rows}) == 2 for e in safety)


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="No results.json"):
        load_variants([tmp_path])
    with pytest.raises(DataError, match="No such results file"):
        load_variants([tmp_path / "missing"])


def test_cli_writes_html_and_prints_md(results_dir, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(results_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    result = runner.invoke(app, ["report", str(results_dir), "--format", "md"])
    assert result.exit_code == 0 and result.stdout.startswith("# safepeft report")


def test_cli_errors_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "safepeft.cli", "report", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: No such results file")
    proc = subprocess.run([sys.executable, "-m", "safepeft.cli", "report", str(tmp_path), "-f", "pdf"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Unknown report format 'pdf'" in proc.stderr


def test_report_never_imports_torch(results_dir):
    code = ("import sys; from safepeft.report import make_report; from safepeft.cli import report; "
            f"[make_report([{str(results_dir)!r}], f) for f in ('html', 'md', 'json')]; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fixture_bias_matches_recomputation():
    """The BBQ statistic the report bootstraps reproduces the recorded bias scores (else no CI would be shown)."""
    from safepeft.report.stats import recompute, statistic_for

    suite = build_variant("lora").suites["bbq-builtin"]
    for metric in ("bias_ambig", "bias_disambig"):
        assert recompute(suite.samples, statistic_for(metric)) == pytest.approx(suite.metrics[metric].value)


def test_report_names_the_judge_and_shows_judge_corrected_rates(tmp_path):
    """A judge with measured error rates: the summary says how good it is and each rate has its corrected value."""
    from safepeft.audit.judge_error import apply_judge_error
    from safepeft.records.results import ArtifactRef

    results = build_variant("base")
    results.judge = ArtifactRef(spec="classifier", params={"validation": {"method": "leave-one-file-out"}})
    apply_judge_error(results, {"tp": 90, "fn": 10, "tn": 160, "fp": 40}, n_resamples=200)
    path = tmp_path / "base" / "results.json"
    path.parent.mkdir()
    results.write(path)
    markdown = RENDERERS.get("md")(_data([path]))
    assert ("Judge: classifier (what its verdict measures is not recorded: results.json before version 2); "
            "agreement 83.3% with human labels on 300 completions (leave-one-file-out), sensitivity 0.900, "
            "specificity 0.800." in markdown)
    assert "judge-corrected" in markdown
    html = RENDERERS.get("html")(_data([path]))
    assert "judge-corrected" in html and "sensitivity 0.900" in html
    plain = tmp_path / "plain" / "results.json"  # the fixture's refusal judge has no measured error rates
    plain.parent.mkdir()
    build_variant("base").write(plain)
    assert "no measured agreement with human labels" in RENDERERS.get("md")(_data([plain]))
