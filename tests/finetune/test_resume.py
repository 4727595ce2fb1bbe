"""A SIGKILL'd `safepeft train` resumed with --resume ends with the same adapter as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from finetune_helpers import SHORT_ROWS, write_jsonl
from safetensors.torch import load_file

STEPS = 60
EVERY = 5


def _command(model_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "safepeft.cli", "train", "--model", str(model_dir), "--data", str(data),
            "--out", str(out), "--method", "lora", "--max-steps", str(STEPS), "--checkpoint-every", str(EVERY),
            "--batch-size", "2", "--dropout", "0.1", "--lr", "5e-3", *extra]


def _env() -> dict[str, str]:
    # One thread: the same reduction order in every run, so results are bitwise comparable.
    return {**os.environ, "SAFEPEFT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", SHORT_ROWS * 3)  # 12 rows: several epochs, shuffled per epoch
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(_command(tiny_model_dir, data, killed), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list((killed / "checkpoints").glob("step-*")):
        assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "safepeft_train.json").exists(), "the run must have been killed before it finished"

    no_resume = subprocess.run(_command(tiny_model_dir, data, killed), env=_env(), capture_output=True, text=True)
    assert no_resume.returncode == 2 and "--resume" in no_resume.stderr

    resumed = subprocess.run(_command(tiny_model_dir, data, killed, "--resume"), env=_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = subprocess.run(_command(tiny_model_dir, data, clean), env=_env(), capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    import json

    record = json.loads((killed / "safepeft_train.json").read_text())
    assert len(record["resumed_from"]) == 1 and 0 < record["resumed_from"][0] < STEPS
    reference = json.loads((clean / "safepeft_train.json").read_text())
    assert record["losses"] == reference["losses"]
    got, want = load_file(killed / "adapter_model.safetensors"), load_file(clean / "adapter_model.safetensors")
    assert got.keys() == want.keys()
    assert all(got[k].equal(want[k]) for k in want)


def test_checkpoints_hold_no_pickles(tiny_model_dir, tmp_path, train_data, monkeypatch):
    import torch

    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.checkpoint import latest_checkpoint
    from safepeft.finetune.trainer import CHECKPOINTS, TrainSpec, train
    from safepeft.models.loader import load_model

    original, calls = torch.optim.AdamW.step, []

    def step_then_crash(self, *args, **kwargs):  # a crash in step 3, after the step-2 checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_crash)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        train(load_model(str(tiny_model_dir)), train_data, TrainSpec(max_steps=4, checkpoint_every=2, batch_size=2),
              FINETUNE_METHODS.get("lora").make_spec(), out, show_progress=False)
    files = sorted(p.name for p in (out / CHECKPOINTS).rglob("*") if p.is_file())
    assert files == ["optimizer.safetensors", "rng.safetensors", "state.json", "trainable.safetensors"]
    checkpoint = latest_checkpoint(out / CHECKPOINTS)
    assert checkpoint is not None and checkpoint.step == 2
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(next(iter(checkpoint.optimizer.values())))
