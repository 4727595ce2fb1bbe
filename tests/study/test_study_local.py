"""The local executor with double step kinds: resume, subtrees, retries, failures, kill + resume; then a real
2-variant study on the tiny model."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from study_helpers import DOUBLES, calls, check_tiny_run, doubles_study, tiny_loop_study, tiny_study, write_yaml

from safepeft.study import retry_step, run_study, study_status
from safepeft.study.dag import expand
from safepeft.study.spec import parse_study


def _status(run_dir):
    return {row["step"]: row for row in study_status(run_dir)}


def test_runs_everything_once_then_reuses_everything(study_file, tmp_path):
    run_dir = tmp_path / "run"
    summary = run_study(study_file, run_dir, kinds=DOUBLES)
    dag = expand(parse_study(doubles_study()))
    assert sorted(calls(run_dir)) == sorted(dag.steps) and not summary.failed
    manifest = json.loads((run_dir / "variants.json").read_text())["variants"]
    assert [v["name"] for v in manifest] == [v.name for v in dag.variants]
    assert summary.report == run_dir / "report.html" and "m/lora[rank=8]+safelora" in summary.report.read_text()

    again = run_study(study_file, run_dir, kinds=DOUBLES)
    assert again.ran == [] and sorted(again.reused) == sorted(dag.steps)
    assert len(calls(run_dir)) == len(dag.steps)


def test_changed_hyper_parameter_recomputes_only_its_subtree(study_file, tmp_path):
    run_dir = tmp_path / "run"
    run_study(study_file, run_dir, kinds=DOUBLES)
    before = len(calls(run_dir))
    study = doubles_study()
    study["finetune"][0]["grid"] = {"rank": [4, 16]}
    changed = write_yaml(tmp_path / "changed.yaml", study)
    run_study(changed, run_dir, kinds=DOUBLES)
    dag = expand(parse_study(study))
    subtree = {"train/m/lora[rank=16]"} | dag.downstream("train/m/lora[rank=16]")
    assert sorted(calls(run_dir)[before:]) == sorted(subtree)
    assert all(row["status"] == "done" for row in _status(run_dir).values())


def test_transient_failure_is_retried(tmp_path):
    study = doubles_study(repairs=[], quantize=[], guards=[])
    study["finetune"][0]["params"]["fail_times"] = 1
    summary = run_study(parse_study(study), tmp_path / "run", kinds=DOUBLES)
    status = _status(tmp_path / "run")
    assert not summary.failed and status["train/m/lora[rank=4]"]["attempts"] == 2
    assert calls(tmp_path / "run").count("train/m/lora[rank=4]") == 2


def test_failed_step_keeps_its_error_blocks_downstream_and_is_retried_alone(tmp_path):
    study = doubles_study(retries=0)
    study["finetune"][0]["params"]["fail_times"] = 1
    run_dir = tmp_path / "run"
    summary = run_study(parse_study(study), run_dir, kinds=DOUBLES)
    assert set(summary.failed) == {"train/m/lora[rank=4]", "train/m/lora[rank=8]"}
    status = _status(run_dir)
    failed = status["train/m/lora[rank=4]"]
    assert failed["status"] == "failed" and "fake transient failure on attempt 1" in failed["error"]
    assert status["audit/m/lora[rank=4]"]["status"] == "blocked" and status["audit/m+aligned"]["status"] == "done"
    assert summary.report is not None  # the report covers what finished

    before = len(calls(run_dir))
    retried = retry_step(run_dir, "train/m/lora[rank=4]", kinds=DOUBLES)
    assert retried.ran == ["train/m/lora[rank=4]"] and calls(run_dir)[before:] == ["train/m/lora[rank=4]"]
    status = _status(run_dir)
    assert status["train/m/lora[rank=4]"]["status"] == "done" and status["train/m/lora[rank=8]"]["status"] == "failed"
    assert status["audit/m/lora[rank=4]"]["status"] == "pending"


def test_configuration_errors_are_not_retried(tmp_path):
    study = doubles_study(repairs=[], quantize=[], guards=[])
    study["finetune"][0]["params"]["config_error"] = True
    summary = run_study(parse_study(study), tmp_path / "run", kinds=DOUBLES)
    assert "Fake configuration error" in summary.failed["train/m/lora[rank=4]"]
    assert _status(tmp_path / "run")["train/m/lora[rank=4]"]["attempts"] == 1


def test_retry_needs_done_dependencies(study_file, tmp_path):
    from safepeft.errors import ConfigError, ResumeError
    from safepeft.study.state import PLAN, write_plan

    dag = expand(parse_study(doubles_study()))
    write_plan(tmp_path, doubles_study(), dag, None)
    assert (tmp_path / PLAN).is_file()
    with pytest.raises(ResumeError, match="depends on align/m"):
        retry_step(tmp_path, "train/m/lora[rank=4]", kinds=DOUBLES)
    with pytest.raises(ConfigError, match="Did you mean"):
        retry_step(tmp_path, "train/m/lora[rank=5]", kinds=DOUBLES)


KILL_SCRIPT = f"""
import sys
from safepeft.study import run_study
run_study(sys.argv[1], sys.argv[2], kinds={DOUBLES!r})
"""


def test_kill_then_resume_recomputes_nothing_finished(tmp_path):
    study = doubles_study(guards=[])
    study["finetune"][0]["params"]["sleep"] = 0.4
    study_path = write_yaml(tmp_path / "study.yaml", study)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(study_path), str(run_dir)],
                            env={**os.environ, "SAFEPEFT_NO_PROGRESS": "1"})
    deadline = time.time() + 120
    while len(calls(run_dir)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = _status(run_dir)
    finished = {name for name, row in status.items() if row["status"] == "done"}
    total = len(status)
    assert finished and len(finished) < total, "the kill must land mid-study for this test to mean anything"
    assert "interrupted" in {row["status"] for row in status.values()}

    before = len(calls(run_dir))
    summary = run_study(study_path, run_dir, kinds=DOUBLES)
    assert not set(calls(run_dir)[before:]) & finished
    assert set(summary.reused) == finished and len(summary.ran) == total - len(finished)
    assert all(row["status"] == "done" for row in _status(run_dir).values())


def test_tiny_model_study_end_to_end(tiny_model_dir, tmp_path):
    from safepeft.target import shared_models

    shared_models().pool.release()  # an earlier test in this process may have left the same base in the pool
    loads = shared_models().pool.base_loads
    summary = run_study(tiny_study(tiny_model_dir), tmp_path / "run")
    assert not summary.failed and len(summary.ran) == 5
    assert shared_models().pool.base_loads == loads + 1  # three audits of one base: loaded once
    check_tiny_run(tmp_path / "run")


@pytest.mark.slow
def test_whole_loop_on_the_tiny_model(tiny_model_dir, tmp_path):
    """Every registered step kind against its real stage: align, train, repair, quantize, audit."""
    from safepeft.report.load import load_variants
    from safepeft.target import shared_models

    shared_models().pool.release()
    loads = shared_models().pool.base_loads
    summary = run_study(tiny_loop_study(tiny_model_dir), tmp_path / "run")
    assert not summary.failed and {s.split("/")[0] for s in summary.ran} == {"align", "train", "repair", "quantize",
                                                                             "audit"}
    # the base, the aligned model once for its two adapters, and each int8-dynamic model (a model of its own)
    assert shared_models().pool.base_loads == loads + 4
    variants = {v.name: v for v in load_variants([tmp_path / "run"])}
    assert {n: v.base for n, v in variants.items()} == {
        "tiny": None, "tiny+aligned": "tiny", "tiny/lora": "tiny+aligned", "tiny/lora+safelora": "tiny/lora",
        "tiny/lora+int8-dynamic": "tiny/lora", "tiny/lora+safelora+int8-dynamic": "tiny/lora+safelora"}
    quantized = variants["tiny/lora+int8-dynamic"].results.model
    assert quantized.params["scheme"] == "int8-dynamic" and quantized.params["bits"] == 8  # as `safepeft audit` writes
    repaired = variants["tiny/lora+safelora"].results.adapter
    assert repaired.fingerprint != variants["tiny/lora"].results.adapter.fingerprint
