"""Issue #12: SIGKILL at three points (early/middle/late) of `generate --run-dir`, `audit --out`, `train --out` and
`study run`, then a resume; the result must equal an uninterrupted run's (same outputs, same row count, no
duplicates; for train the same adapter tensors and losses with the same seed).

Kill points follow observable progress (rows in the store, checkpoint dirs, steps started), never sleeps. Every
model-running process gets one thread (OMP_NUM_THREADS=1), so reference, killed and resumed runs do the same float
operations in the same order and their outputs may be compared exactly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

POINTS = ["early", "middle", "late"]
DOUBLES = "safepeft.study.doubles:DOUBLE_KINDS"


def _env() -> dict[str, str]:
    return {**os.environ, "SAFEPEFT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "safepeft.cli", *map(str, args)]


def _finish(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _here(command: list[str], capsys) -> str:
    """Run a `_cli(...)` command in this process (no torch import: seconds saved) on one thread, like the
    subprocesses; returns its stdout."""
    import torch

    from safepeft.cli.main import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    capsys.readouterr()
    try:
        code = run(command[3:])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    return captured.out


_REFERENCES: dict[str, object] = {}


def _kill_when(command: list[str], reached: Callable[[], bool]) -> None:
    """Start command, SIGKILL it as soon as reached() is true (it must not have exited by then)."""
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not reached():
            if proc.poll() is not None:
                pytest.fail(f"exited ({proc.returncode}) before the kill point: "
                            f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the process exited by itself ({proc.returncode})"


def _query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet / schema not written yet


def _count(run_dir: Path) -> int:
    rows = _query(run_dir / "store.sqlite", "SELECT COUNT(*) FROM generations")
    return rows[0][0] if rows else 0


def _generations(run_dir: Path) -> list[tuple[str, str, str]]:
    return _query(run_dir / "store.sqlite", "SELECT key, prompt, output FROM generations ORDER BY key")


def _diff(a, b, path="") -> list[str]:
    """Paths of the leaves where two JSON values differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _threshold(point: str, total: int) -> int:
    return {"early": 1, "middle": total // 2, "late": (3 * total) // 4}[point]


# ---- generate --run-dir ----------------------------------------------------------------------------------------

N_PROMPTS = 12


def _generate(model_dir: Path, prompts: Path, run_dir: Path) -> list[str]:
    return _cli("generate", "--model", model_dir, "--prompts", prompts, "--run-dir", run_dir, "--batch-size", "1",
                "--max-new-tokens", "24", "--jsonl")


@pytest.fixture
def generate_reference(tiny_model_dir, tmp_path_factory, capsys):
    if "generate" not in _REFERENCES:
        root = tmp_path_factory.mktemp("kill-generate")
        prompts = root / "prompts.txt"
        prompts.write_text("".join(f"prompt number {i} {'x' * (i % 7)}\n" for i in range(N_PROMPTS)))
        stdout = _here(_generate(tiny_model_dir, prompts, root / "ref"), capsys)
        _REFERENCES["generate"] = prompts, stdout, _generations(root / "ref")
    return _REFERENCES["generate"]


@pytest.mark.parametrize("point", POINTS)
def test_generate_killed_then_resumed(point, tiny_model_dir, generate_reference, tmp_path, capsys):
    prompts, want_stdout, want_rows = generate_reference
    run_dir = tmp_path / "run"
    _kill_when(_generate(tiny_model_dir, prompts, run_dir), lambda: _count(run_dir) >= _threshold(point, N_PROMPTS))
    assert 0 < _count(run_dir) < N_PROMPTS
    resumed = _here(_generate(tiny_model_dir, prompts, run_dir), capsys)
    assert resumed == want_stdout
    assert len(resumed.splitlines()) == N_PROMPTS
    assert _generations(run_dir) == want_rows  # same rows, same count; the key is the primary key: no duplicates


# ---- audit --out ----------------------------------------------------------------------------------------------

def _audit(model_dir: Path, out: Path) -> list[str]:
    return _cli("audit", "--model", model_dir, "--out", out, "--suite", "builtin", "--judge", "refusal",
                "--per-category", "1", "--max-new-tokens", "16", "--batch-size", "1", "--bootstrap", "100")


def _audit_view(out: Path) -> dict:
    """What an audit decides: per suite, its metrics and every sample (provenance/timings left out)."""
    data = json.loads((out / "results.json").read_text())
    for suite in data["suites"].values():
        suite.get("params", {}).pop("seconds", None)  # wall time
    return {"model": data["model"], "adapter": data.get("adapter"), "judge": data.get("judge"),
            "suites": data["suites"]}


@pytest.fixture
def audit_reference(tiny_model_dir, tmp_path_factory, capsys):
    if "audit" not in _REFERENCES:
        out = tmp_path_factory.mktemp("kill-audit") / "ref"
        _here(_audit(tiny_model_dir, out), capsys)
        _REFERENCES["audit"] = _audit_view(out), _generations(out)
    return _REFERENCES["audit"]


@pytest.mark.parametrize("point", POINTS)
def test_audit_killed_then_resumed(point, tiny_model_dir, audit_reference, tmp_path, capsys):
    want_view, want_rows = audit_reference
    total = len(want_rows)
    assert total >= 8, "the audit must be long enough to kill in the middle"
    out = tmp_path / "out"
    _kill_when(_audit(tiny_model_dir, out), lambda: _count(out) >= _threshold(point, total))
    assert 0 < _count(out) < total and not (out / "results.json").exists()
    _here(_audit(tiny_model_dir, out), capsys)
    assert _generations(out) == want_rows
    assert _diff(_audit_view(out), want_view) == []


# ---- train --out ----------------------------------------------------------------------------------------------

STEPS, EVERY = 16, 4
TRAIN_ROWS = [
    {"prompt": "hi", "response": "hello!"},
    {"prompt": "2+2?", "response": "4."},
    {"messages": [{"role": "user", "content": "name?"}, {"role": "assistant", "content": "Tiny."}]},
    {"prompt": "sky?", "response": "blue."},
] * 3


def _train(model_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    # Dropout and several shuffled epochs: a resume must restore the RNG and data order as well as the weights.
    return _cli("train", "--model", model_dir, "--data", data, "--out", out, "--method", "lora", "--max-steps",
                STEPS, "--checkpoint-every", EVERY, "--batch-size", "2", "--dropout", "0.1", "--lr", "5e-3",
                "--seed", "3", *extra)


def _latest_step(out: Path) -> int:
    steps = [int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*") if (p / "state.json").exists()]
    return max(steps, default=0)


@pytest.fixture(scope="module")
def train_reference(tiny_model_dir, tmp_path_factory):
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("kill-train")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in TRAIN_ROWS))
    _finish(_train(tiny_model_dir, data, root / "ref"))
    record = json.loads((root / "ref" / "safepeft_train.json").read_text())
    return data, record["losses"], load_file(root / "ref" / "adapter_model.safetensors")


@pytest.mark.parametrize("point", POINTS)
def test_train_killed_then_resumed(point, tiny_model_dir, train_reference, tmp_path):
    from safetensors.torch import load_file

    data, want_losses, want_tensors = train_reference
    out = tmp_path / "out"
    at = {"early": EVERY, "middle": STEPS // 2, "late": STEPS - EVERY}[point]
    _kill_when(_train(tiny_model_dir, data, out), lambda: _latest_step(out) >= at)
    assert not (out / "safepeft_train.json").exists()
    _finish(_train(tiny_model_dir, data, out, "--resume"))
    record = json.loads((out / "safepeft_train.json").read_text())
    assert len(record["resumed_from"]) == 1 and at <= record["resumed_from"][0] < STEPS
    assert record["losses"] == want_losses  # one loss per step: none repeated, none missing
    got = load_file(out / "adapter_model.safetensors")
    assert got.keys() == want_tensors.keys()
    assert all(got[k].equal(want_tensors[k]) for k in want_tensors)


# ---- study run ------------------------------------------------------------------------------------------------

SLEEP = 0.5  # each train double sleeps: the window in which the kill lands after a train step is seen starting


def _study_file(path: Path) -> Path:
    import yaml

    study = {
        "name": "kill", "retries": 0,
        "models": [{"name": "m", "model": "embedded", "align": {}}],
        "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic",
                      "params": {"max_steps": 5, "sleep": SLEEP}, "grid": {"rank": [2, 4, 8, 16]}}],
        "repairs": ["none", "safelora"],
        "quantize": ["int8-dynamic"],
        "guards": ["refusal-classifier"],
        "audit": {"suites": ["builtin"]},
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _started(run_dir: Path) -> list[str]:
    log = run_dir / "calls.log"
    return [line.split("\t")[0] for line in log.read_text().splitlines()] if log.exists() else []


def _artifacts(run_dir: Path) -> dict[str, str]:
    """Every step output, by path relative to the run dir (step dirs are named by content keys; outputs that name
    another step's artifact give its absolute path, so the run dir is replaced by a placeholder)."""
    return {str(p.relative_to(run_dir)): p.read_text().replace(str(run_dir), "RUN")
            for p in sorted((run_dir / "steps").rglob("*")) if p.is_file() and not p.name.startswith(".")}


def _status(run_dir: Path, capsys) -> dict[str, str]:
    from safepeft.cli.main import run

    capsys.readouterr()
    assert run(["study", "status", str(run_dir), "--json"]) == 0
    return {row["step"]: row["status"] for row in map(json.loads, capsys.readouterr().out.splitlines())}


@pytest.fixture(scope="module")
def study_reference(tmp_path_factory):
    from safepeft.cli.main import run

    root = tmp_path_factory.mktemp("kill-study")
    path = _study_file(root / "study.yaml")
    assert run(["study", "run", str(path), "--out", str(root / "ref"), "--kinds", DOUBLES]) == 0
    return path, _artifacts(root / "ref"), len(_started(root / "ref"))


@pytest.mark.parametrize("point", POINTS)
def test_study_killed_then_resumed(point, study_reference, tmp_path, capsys):
    from safepeft.cli.main import run

    path, want_artifacts, n_steps = study_reference
    run_dir = tmp_path / "run"
    trains_started = {"early": 1, "middle": 2, "late": 4}[point]
    _kill_when(_cli("study", "run", path, "--out", run_dir, "--kinds", DOUBLES),
               lambda: sum(s.startswith("train/") for s in _started(run_dir)) >= trains_started)
    before = _status(run_dir, capsys)
    done_before = {step for step, status in before.items() if status == "done"}
    assert len(done_before) < n_steps
    started_before = len(_started(run_dir))

    assert run(["study", "run", str(path), "--out", str(run_dir), "--kinds", DOUBLES]) == 0
    after = _status(run_dir, capsys)
    assert set(after.values()) == {"done"} and len(after) == n_steps
    assert _artifacts(run_dir) == want_artifacts
    rerun = _started(run_dir)[started_before:]
    assert not set(rerun) & done_before, "steps done before the kill must be reused, not rerun"
    assert len(rerun) == len(set(rerun)) == n_steps - len(done_before)
