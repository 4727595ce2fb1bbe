"""Issue 12: atomic writes follow the umask, killed writers' temp dirs are swept, one process per run dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from safepeft.store.atomic import atomic_dir, atomic_write_json, sweep_stale
from safepeft.store.lock import LOCK_FILE, run_dir_lock


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_apply_the_umask(tmp_path, umask_022):
    atomic_write_json(tmp_path / "results.json", {"a": 1})
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "weights.safetensors").write_bytes(b"x")
    assert _mode(tmp_path / "results.json") == 0o644  # mkstemp alone gives 0600
    assert _mode(tmp_path / "model") == 0o755  # mkdtemp alone gives 0700
    os.umask(0o077)
    atomic_write_json(tmp_path / "private.json", {})
    assert _mode(tmp_path / "private.json") == 0o600


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_writers_temp_dir_is_swept_by_the_next_write(tmp_path):
    target = tmp_path / "q8"
    dead = tmp_path / f".q8.tmp-{_dead_pid()}-abc123"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "model.safetensors").write_bytes(b"0" * 1024)
    live = tmp_path / f".q8.tmp-{os.getppid()}-def456"  # a live process's work in progress is left alone
    live.mkdir()
    aside = tmp_path / f".q8.old.{_dead_pid()}"
    aside.mkdir()
    other = tmp_path / f".other.tmp-{_dead_pid()}-x"  # another target's debris is not ours to remove
    other.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("new")
    assert not dead.exists() and not aside.exists()
    assert live.exists() and other.exists()
    assert (target / "f").read_text() == "new"
    assert sweep_stale(target) == []


HOLD = """
import sys, time
from safepeft.store.lock import run_dir_lock
with run_dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    open(sys.argv[1] + "/released", "w").close()  # the last thing done while holding the lock
"""


def test_a_second_process_waits_for_the_run_dir_lock(tmp_path, capfd):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    began = time.monotonic()
    with run_dir_lock(tmp_path):
        waited = time.monotonic() - began
        assert (tmp_path / "released").exists(), "the lock was granted while the other process still held it"
    holder.wait()
    assert "Another safepeft process" in capfd.readouterr().err and waited > 0
    assert (tmp_path / LOCK_FILE).is_file()


def test_the_lock_is_reentrant_in_one_process_and_dropped_when_its_holder_is_killed(tmp_path):
    with run_dir_lock(tmp_path), run_dir_lock(tmp_path):  # nested use by one process must not wait on itself
        pass
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with run_dir_lock(tmp_path):  # the kernel released the dead holder's flock
        pass
