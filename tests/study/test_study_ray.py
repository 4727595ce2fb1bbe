"""The Ray executor on a local Ray instance (one per module: Ray starts slowly): retries, failures, and the tiny
2-variant study end to end."""

import pytest
from study_helpers import DOUBLES, calls, check_tiny_run, doubles_study, tiny_study

from safepeft.study import run_study, study_status
from safepeft.study.dag import expand
from safepeft.study.executors import RayExecutor
from safepeft.study.spec import parse_study

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _status(run_dir):
    return {row["step"]: row for row in study_status(run_dir)}


def test_doubles_study_with_a_retried_task_and_a_failed_one(tmp_path):
    study = doubles_study(guards=[], finetune=[
        {"name": "flaky", "method": "lora", "data": "d", "params": {"fail_times": 1}},
        {"name": "broken", "method": "lora", "data": "d", "params": {"config_error": True}},
    ])
    run_dir = tmp_path / "run"
    summary = run_study(parse_study(study), run_dir, executor=RayExecutor(max_parallel=2), kinds=DOUBLES)
    status = _status(run_dir)
    assert status["train/m/flaky"]["status"] == "done" and status["train/m/flaky"]["attempts"] == 2
    assert calls(run_dir).count("train/m/flaky") == 2  # the first attempt raised; Ray ran it again
    assert list(summary.failed) == ["train/m/broken"] and status["train/m/broken"]["attempts"] == 1
    assert status["audit/m/broken"]["status"] == "blocked"
    done = {n for n, row in status.items() if row["status"] == "done"}
    dag = expand(parse_study(study))
    assert done == set(dag.steps) - {"train/m/broken"} - dag.downstream("train/m/broken")

    again = run_study(parse_study(study), run_dir, executor=RayExecutor(max_parallel=2), kinds=DOUBLES)
    assert set(again.reused) == done and set(again.failed) == {"train/m/broken"}


def test_tiny_model_study_on_ray(tiny_model_dir, tmp_path):
    executor = RayExecutor(max_parallel=2)
    summary = run_study(tiny_study(tiny_model_dir), tmp_path / "run", executor=executor)
    assert not summary.failed and len(summary.ran) == 5
    assert executor.resources["audit"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    check_tiny_run(tmp_path / "run")
