"""End to end on the embedded SmolLM2: `safepeft audit --suite builtin --per-category 3` covers all 11 hazards."""

import pytest
from typer.testing import CliRunner

from safepeft.audit import taxonomy
from safepeft.cli.main import app
from safepeft.records import load_results
from safepeft.records.results import safety_rate

pytestmark = pytest.mark.slow


def test_embedded_audit_on_builtin_covers_every_hazard(tmp_path):
    out = tmp_path / "audit"
    result = CliRunner().invoke(app, ["audit", "--model", "embedded", "--suite", "builtin", "--per-category", "3",
                                      "--max-new-tokens", "16", "--batch-size", "33", "--out", str(out)])
    assert result.exit_code == 0, result.output
    suite = load_results(out / "results.json").suites["builtin"]
    assert set(suite.by_category) == set(taxonomy.HAZARDS)
    assert all(part.n == 3 for part in suite.by_category.values()) and suite.n == 33
    name, rate = safety_rate(suite)  # the default classifier judge measures refusal: compliance_rate
    assert name == "compliance_rate" and suite.judge.measures == "refusal"
    assert rate.value is not None and rate.ci95[0] <= rate.value <= rate.ci95[1]
    assert all(sample.completion is not None for sample in suite.samples)
    print(f"embedded builtin {name}={rate.value:.2f} ci95={rate.ci95}")
