"""`safepeft audit --attack ... --guard ...` on the tiny model: jailbreak:<suite> in results.json, guard recorded."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.records import load_results


def test_audit_with_attacks_and_guard(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = ["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--suite", "builtin-benign",
            "--attack", "direct", "--attack", "base64", "--guard", "smoothllm", "--limit", "3",
            "--max-new-tokens", "4", "--bootstrap", "100", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"results": str(out / "results.json")}
    results = load_results(out / "results.json")
    assert set(results.suites) == {"builtin", "jailbreak:builtin", "builtin-benign"}
    jailbreak = results.suites["jailbreak:builtin"]
    assert jailbreak.kind == "jailbreak" and jailbreak.n == 6
    assert {"asr", "any_attack_asr"} <= set(jailbreak.metrics)
    assert set(jailbreak.by_attack) == {"direct", "base64"}
    assert all(set(c.metrics) >= {"asr", "any_attack_asr"} for c in jailbreak.by_category.values())
    assert results.guard.spec == "smoothllm" and results.guard.params["n_copies"] == 10
    raw = json.loads((out / "results.json").read_text())
    assert raw["suites"]["jailbreak:builtin"]["by_attack"]["base64"]["metrics"]["asr"]["ci95"] is not None
    again = CliRunner().invoke(app, args)  # resumes from the store: identical results
    assert again.exit_code == 0
    assert load_results(out / "results.json").suites["jailbreak:builtin"].samples == jailbreak.samples


def test_unknown_attack_and_guard_fail_before_loading(tmp_path):
    runner = CliRunner()
    for option, value, fragment in [("--attack", "bas64", "Did you mean 'base64'"),
                                    ("--guard", "smoothlm", "Did you mean 'smoothllm'")]:
        result = runner.invoke(app, ["audit", "--model", "/nonexistent/model", option, value, "--out",
                                     str(tmp_path / "r")])
        assert result.exit_code != 0 and fragment in str(result.exception or result.output)
