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
            "--bootstrap", "100", "--out", str(out)]
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
