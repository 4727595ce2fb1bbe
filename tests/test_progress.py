"""Progress goes to stderr, always; without a terminal it is plain periodic lines (issues 12 and 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from safepeft import progress


def test_jsonl_stays_pure_json_with_a_run_dir_and_progress_on(tiny_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SAFEPEFT_NO_PROGRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "safepeft.cli", "generate", "--model", str(tiny_model_dir), "-p", "hello", "-p", "hi",
         "--max-new-tokens", "3", "--jsonl", "--run-dir", str(tmp_path / "run"), "--batch-size", "1"],
        capture_output=True, text=True, env={**env, "SAFEPEFT_PROGRESS_EVERY": "0"}, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["prompt"] for row in rows] == ["hello", "hi"]
    assert "generate" in done.stderr and "[done]" in done.stderr  # the progress went to stderr


def test_without_a_terminal_progress_logs_lines_with_rate_and_eta(capsys, monkeypatch):
    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("SAFEPEFT_PROGRESS_EVERY", "0")
    with progress.bar("align", 4) as advance:
        advance(1, loss=0.5)
        advance(1)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("[progress] align: 1/4 in 0:00") and "eta" in lines[0] and "loss=0.5" in lines[0]
    assert lines[-1].startswith("[done] align: 2/4")


def test_disabled_progress_prints_nothing(capsys, monkeypatch):
    monkeypatch.setenv("SAFEPEFT_NO_PROGRESS", "1")
    with progress.bar("x", 3) as advance:
        advance()
    assert capsys.readouterr() == ("", "")


def test_audit_progress_names_the_suite(tiny_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SAFEPEFT_NO_PROGRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "safepeft.cli", "audit", "--model", str(tiny_model_dir), "--suite", "builtin",
         "--suite", "builtin-benign", "--judge", "refusal", "--limit", "3", "--max-new-tokens", "2", "--batch-size",
         "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**env, "SAFEPEFT_PROGRESS_EVERY": "0"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "generate [builtin]: 3/3" in done.stderr and "generate [builtin-benign]: 3/3" in done.stderr


def test_scope_prefixes_bars_and_is_restored(capsys, monkeypatch):
    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("SAFEPEFT_PROGRESS_EVERY", "0")
    with progress.scope("xstest"), progress.bar("judge", 1) as advance:
        advance(1)
    with progress.bar("judge", 1) as advance:
        advance(1)
    err = capsys.readouterr().err
    assert "judge [xstest]" in err and err.count("[xstest]") == err.count("judge [xstest]") >= 1
    assert any(line.startswith("[done] judge: ") for line in err.splitlines())
