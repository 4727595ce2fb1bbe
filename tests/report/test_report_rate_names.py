"""Issue #15 item 5 in the report: the safety rate is labelled after what the judge measured, the judge and its
agreement are named, and results.json / efficacy.json files written before the names load and render as written."""

from __future__ import annotations

import json

from results_fixtures import build_variant
from test_report_efficacy import _efficacy

from safepeft.records.efficacy import EfficacyResults
from safepeft.records.results import load_results
from safepeft.report import make_report
from safepeft.report.build import build_report
from safepeft.report.load import load_variants


def _write(directory, name, **kwargs):
    path = directory / name.replace("+", "-") / "results.json"
    path.parent.mkdir(parents=True)
    build_variant(name, **kwargs).write(path)
    return path


def _old(path):
    """Rewrite a results.json as version 1 wrote it: no per-suite judge, schema_version 1."""
    raw = json.loads(path.read_text())
    raw["schema_version"] = 1
    for suite in raw["suites"].values():
        del suite["judge"]
    path.write_text(json.dumps(raw))
    return path


def _columns(paths):
    data = build_report(load_variants(paths))
    return {c.kind: c for c in data.columns}, data


def test_an_old_results_json_loads_and_renders_as_written(tmp_path):
    """harmful_rate from the refusal judge (version 1): read as written, labelled as written, the judge named."""
    paths = [_old(_write(tmp_path, "base")), _old(_write(tmp_path, "aligned"))]
    assert "judge" not in json.loads(paths[0].read_text())["suites"]["builtin"]
    loaded = load_results(paths[0])
    assert loaded.schema_version == 1 and loaded.suites["builtin"].judge is None
    columns, data = _columns(paths)
    safety = columns["safety"]
    assert (safety.metric, safety.label) == ("harmful_rate", "Harmful")
    assert data.summary[1].cells[safety.key].delta is not None  # both files name it alike: compared
    md = make_report(paths, "md")
    assert "Harmful (builtin)" in md and "Harmful by hazard category · builtin" in md
    assert "Judge: refusal (what its verdict measures is not recorded: results.json before version 2)" in md
    assert "Attack success (ASR)" in md  # no judge recorded for the ASR: no meaning claimed


def test_a_refusal_judge_is_labelled_compliance_and_a_harm_judge_harmful(tmp_path):
    for measures, metric, label, judge in (("refusal", "compliance_rate", "Compliance (did not refuse)", "refusal"),
                                           ("harm", "harmful_rate", "Harmful", "llama-guard")):
        paths = [_write(tmp_path / measures, name, measures=measures) for name in ("base", "aligned")]
        columns, data = _columns(paths)
        assert (columns["safety"].metric, columns["safety"].label) == (metric, label)
        meaning = "did not refuse" if measures == "refusal" else "harmful content given"
        assert columns["jailbreak"].label == f"Attack success (ASR, {meaning})"
        assert data.summary[1].cells[columns["safety"].key].delta is not None
        for fmt in ("md", "html"):
            page = make_report(paths, fmt)
            assert label in page and f"{label} by hazard category · builtin" in page, (measures, fmt)
            assert f"Judge: {judge}, a {measures} judge ({metric} = share of answers" in page, (measures, fmt)
        other = "Compliance (did not refuse)" if measures == "harm" else "Harmful ("
        assert other not in make_report(paths, "md")


def test_a_compliance_rate_is_never_compared_with_a_harmful_rate(tmp_path):
    """An aligned variant judged by a harm judge and a fine-tune judged by a refusal judge: two columns, no delta
    across them, and the cell says why."""
    paths = [_write(tmp_path, "aligned", measures="harm"), _write(tmp_path, "lora", measures="refusal")]
    data = build_report(load_variants(paths))
    safety = [c for c in data.columns if c.kind == "safety"]
    assert [c.metric for c in safety] == ["harmful_rate", "compliance_rate"]
    lora = next(r for r in data.summary if r.variant == "lora")
    cell = lora.cells["builtin/compliance_rate"]
    assert cell.value is not None and cell.delta is None
    assert "aligned measured harmful_rate, not compliance_rate" in cell.note
    assert lora.cells["builtin/harmful_rate"].note == "not measured"
    assert len(data.heatmaps) == 2


def test_efficacy_tables_name_the_rate_and_old_files_read_as_harmful(results_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(results_dir, run)
    compliance = _efficacy().model_copy(update={"safety_rate": "compliance_rate"})
    (run / "efficacy.json").write_text(compliance.model_dump_json())
    md = make_report([run], "md")
    assert "compliance (aligned)" in md and "Δ compliance" in md and "Δ harmful" not in md
    assert "H is the compliance (did not refuse) rate" in md
    old = json.loads(_efficacy().model_dump_json())
    del old["safety_rate"]  # as written before the field existed
    (run / "efficacy.json").write_text(json.dumps(old))
    assert EfficacyResults.model_validate(old).safety_rate == "harmful_rate"
    page = make_report([run])
    assert "harmful (aligned)" in page and "Δ harmful" in page and "H is the harmful rate" in page
