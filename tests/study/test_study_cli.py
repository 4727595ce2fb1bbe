"""`safepeft study run|status|retry` through the CLI (double step kinds)."""

import json
import subprocess
import sys

from study_helpers import DOUBLES, doubles_study, write_yaml
from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()


def test_run_status_retry(tmp_path):
    study = doubles_study(repairs=[], quantize=[], guards=[], retries=0)
    study["finetune"][0]["params"]["fail_times"] = 1
    path = write_yaml(tmp_path / "s.yaml", study)
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["study", "run", str(path), "--out", str(run_dir), "--kinds", DOUBLES])
    assert result.exit_code == 1 and "✗ train/m/lora[rank=4]" in result.stdout and "Report:" in result.stdout
    result = runner.invoke(app, ["study", "status", str(run_dir), "--json"])
    rows = {r["step"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["train/m/lora[rank=4]"]["status"] == "failed" and rows["audit/m"]["status"] == "done"
    result = runner.invoke(app, ["study", "retry", str(run_dir), "train/m/lora[rank=4]", "--kinds", DOUBLES])
    assert result.exit_code == 0 and "✓ train/m/lora[rank=4]" in result.stdout
    result = runner.invoke(app, ["study", "status", str(run_dir)])
    assert result.exit_code == 0 and "failed" in result.stdout and "pending" in result.stdout


def test_bad_study_exits_2_with_the_key_path(tmp_path):
    study = doubles_study()
    study["guards"] = [{"name": "x", "aply_to": ["base"]}]
    path = write_yaml(tmp_path / "s.yaml", study)
    proc = subprocess.run([sys.executable, "-m", "safepeft.cli", "study", "run", str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "guards[0].aply_to: unknown key (did you mean 'apply_to'?)" in proc.stderr


def test_status_of_a_non_study_dir(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "safepeft.cli", "study", "status", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "is not a study run directory" in proc.stderr


def test_plan_lists_steps_cached_and_estimates_without_running(tmp_path):
    import json

    path = write_yaml(tmp_path / "study.yaml", doubles_study())
    run_dir = tmp_path / "run"
    runner = CliRunner()
    before = runner.invoke(app, ["study", "plan", str(path), "--out", str(run_dir), "--json"])
    assert before.exit_code == 0, before.output
    data = json.loads(before.output)
    assert data["cached"] == 0 and data["todo"] == len(data["steps"]) and data["estimate_s"] == 0.0
    assert not run_dir.exists()  # planning creates nothing
    assert runner.invoke(app, ["study", "run", str(path), "--out", str(run_dir), "--kinds", DOUBLES]).exit_code == 0
    after = json.loads(runner.invoke(app, ["study", "plan", str(path), "--out", str(run_dir), "--json"]).output)
    assert after["cached"] == len(after["steps"]) and after["todo"] == 0
    changed = doubles_study(audit={"suites": ["builtin"], "limit": 3})  # only the audits change
    path2 = write_yaml(tmp_path / "study2.yaml", changed)
    partly = json.loads(runner.invoke(app, ["study", "plan", str(path2), "--out", str(run_dir), "--json"]).output)
    todo = [s for s in partly["steps"] if not s["cached"]]
    assert todo and {s["kind"] for s in todo} == {"audit"}
    # the double kinds take about no time: what matters is that every step to run has a measured estimate
    assert all(s["estimate_s"] is not None for s in todo) and partly["estimate_s"] >= 0
    assert partly["unestimated_kinds"] == []
    text = runner.invoke(app, ["study", "plan", str(path2), "--out", str(run_dir)])
    assert "to run" in text.output and "cached" in text.output
