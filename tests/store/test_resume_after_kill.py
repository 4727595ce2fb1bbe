"""A generation run killed with SIGKILL mid-way resumes to the same outputs, with no duplicate rows."""

import json
import os
import signal
import subprocess
import sys
import time

from store_helpers import generation_rows

N_PROMPTS = 24


def _command(model_dir, prompts_file, run_dir):
    return [sys.executable, "-m", "safepeft.cli", "generate", "--model", str(model_dir), "--prompts",
            str(prompts_file), "--run-dir", str(run_dir), "--batch-size", "1", "--max-new-tokens", "48", "--jsonl"]


def test_kill_then_resume_matches_uninterrupted(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"prompt number {i} {'x' * (i % 7)}" for i in range(N_PROMPTS)) + "\n")
    env = {**os.environ, "SAFEPEFT_NO_PROGRESS": "1"}

    reference = subprocess.run(_command(tiny_model_dir, prompts, tmp_path / "ref"), env=env, capture_output=True,
                               text=True, check=True)

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(_command(tiny_model_dir, prompts, killed_dir), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while generation_rows(killed_dir) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_resume = generation_rows(killed_dir)
    assert 0 < done_before_resume < N_PROMPTS, "the kill must land mid-run for this test to mean anything"

    resumed = subprocess.run(_command(tiny_model_dir, prompts, killed_dir), env=env, capture_output=True, text=True,
                             check=True)
    assert resumed.stdout == reference.stdout
    assert generation_rows(killed_dir) == N_PROMPTS  # no duplicate rows
    outputs = [json.loads(line)["output"] for line in resumed.stdout.splitlines()]
    assert len(outputs) == N_PROMPTS
