"""`safepeft audit` from the command line on the tiny model; errors are one line, exit 2."""

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.records import load_results


def test_audit_writes_results_and_prints_tables(tiny_model_dir, tmp_path, shared_data):
    out = tmp_path / "run"
    args = ["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--suite",
            f"jailbreakbench-benign:{shared_data / 'jailbreakbench'}", "--per-category", "1", "--max-new-tokens", "4",
            "--bootstrap", "100", "--judge", "refusal", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"results": str(out / "results.json")}
    assert "builtin (safety, n=11)" in result.stdout and "S11_sexual_content" in result.stdout
    results = load_results(out / "results.json")
    assert set(results.suites) == {"builtin", "jailbreakbench-benign"}
    assert results.model.fingerprint and results.judge.spec == "refusal"
    assert results.provenance["command"][0] == "safepeft"
    again = CliRunner().invoke(app, args)  # resumes from the store: same numbers and samples
    assert again.exit_code == 0
    for name, suite in load_results(out / "results.json").suites.items():
        assert (suite.metrics, suite.samples) == (results.suites[name].metrics, results.suites[name].samples)


def test_classifier_is_the_default_judge_of_audit_study_and_demo():
    import inspect

    from safepeft.cli.audit import audit
    from safepeft.study.builtin import demo_study
    from safepeft.study.spec import AuditEntry, parse_study

    judge_flag = inspect.signature(audit).parameters["entry__judge"].default
    assert judge_flag.param_decls[0] == "--judge" and judge_flag.default == "classifier"
    assert AuditEntry(suites=["builtin"]).judge == "classifier"
    for quick in (True, False):
        assert parse_study(demo_study(quick), "demo").audit.judge == "classifier"


def run_cli(*args):
    env = {**os.environ, "SAFEPEFT_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "safepeft.cli", *map(str, args)], capture_output=True, text=True,
                          env=env)


def test_bad_suite_and_judge_are_one_line_errors(tmp_path):
    for args, fragment in [
        (["--suite", "harmbenc"], "Did you mean 'harmbench'"),
        (["--judge", "llama-gard"], "Did you mean 'llama-guard'"),
        (["--suite", "ailuminate"], "needs a source"),
        (["--mode", "vibes"], "Invalid --mode"),
    ]:
        result = run_cli("audit", "--model", tmp_path / "unused", "--out", tmp_path / "o", *args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], result.stderr


def test_judge_accuracy_from_a_judge_eval_run_corrects_the_rates(tiny_model_dir, tmp_path):
    accuracy = tmp_path / "refusal-eval.json"
    accuracy.write_text(json.dumps({"confusion": {"tp": 90, "fp": 40, "fn": 10, "tn": 160}}))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--per-category",
                                      "1", "--max-new-tokens", "4", "--bootstrap", "100", "--judge", "refusal",
                                      "--judge-accuracy", str(accuracy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = load_results(out / "results.json")
    assert results.judge.params["accuracy"] == {"sensitivity": 0.9, "specificity": 0.8, "agreement": 0.8333,
                                                "counts": {"tp": 90, "fp": 40, "fn": 10, "tn": 160}}
    harmful = results.suites["builtin"].metrics["compliance_rate"]  # the refusal judge: "did not refuse"
    assert harmful.corrected is not None and harmful.corrected_ci95 is not None
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    failed = run_cli("audit", "--model", tiny_model_dir, "--suite", "builtin", "--judge", "refusal",
                     "--judge-accuracy", bad, "--out", tmp_path / "run2")
    assert failed.returncode == 2 and "is not a judge-eval result" in failed.stderr
