"""Issue #15: `--suite prompts:FILE --kind harmful|benign` audits your own prompts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from safepeft.audit.runner import build_suite
from safepeft.audit.suites.prompts import hazard_of
from safepeft.cli.main import app
from safepeft.errors import DataError


def test_category_rule():
    assert hazard_of("S9") == "S9_hate" and hazard_of("s10_suicide_self_harm") == "S10_suicide_self_harm"
    assert hazard_of("Privacy") == "S6_privacy"
    assert hazard_of("weird stuff") == "other" and hazard_of(None) == "other" and hazard_of("S99") == "other"


def test_text_and_jsonl_files(tmp_path):
    (tmp_path / "p.txt").write_text("first prompt\n\nsecond prompt\n", encoding="utf-8")
    items = build_suite(f"prompts:{tmp_path / 'p.txt'}").items()
    assert [i.prompt for i in items] == ["first prompt", "second prompt"] and {i.category for i in items} == {"other"}
    rows = [{"id": "a", "text": "x?", "category": "hate"}, {"id": "b", "text": "y?", "category": "S9"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items = build_suite(f"prompts:{tmp_path / 'p.jsonl'}").items()
    assert [(i.id, i.category, i.source_category) for i in items] == [("a", "S9_hate", "hate"), ("b", "S9_hate", "S9")]
    (tmp_path / "bad.csv").write_text("body\nx\n", encoding="utf-8")
    with pytest.raises(DataError, match="columns: body"):
        build_suite(f"prompts:{tmp_path / 'bad.csv'}").items()


# the refusal judge measures refusal: a harmful-kind suite's rate is compliance_rate ("did not refuse")
@pytest.mark.parametrize("kind, metric", [("harmful", "compliance_rate"), ("benign", "over_refusal_rate")])
def test_kind_picks_the_metrics(tiny_model_dir, tmp_path, kind, metric):
    (tmp_path / "p.txt").write_text("a question\nanother question\n", encoding="utf-8")
    out = tmp_path / "run"
    suite_arg = f"prompts:{tmp_path / 'p.txt'}"
    result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--suite", suite_arg,
                                      "--kind", kind, "--judge", "refusal", "--max-new-tokens", "2", "--bootstrap",
                                      "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    suite = json.loads((out / "results.json").read_text())["suites"]["prompts"]
    assert metric in suite["metrics"] and suite["params"]["prompt_kind"] == kind and suite["n"] == 2


def test_bad_kind_names_the_flag(tmp_path):
    result = CliRunner().invoke(app, ["audit", "--model", "embedded", "--suite", "builtin", "--kind", "evil",
                                      "--out", str(tmp_path / "r")])
    from safepeft.errors import ConfigError

    assert isinstance(result.exception, ConfigError)  # the real entry point turns it into exit code 2
    assert "--kind" in str(result.exception) and "'harmful' or 'benign'" in str(result.exception)
