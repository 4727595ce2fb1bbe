"""One process at a time per run directory: an advisory lock (flock) on ``DIR/.lock``.

Without it two processes on one run directory both compute every item (each misses the other's uncommitted
batches). With it the second one waits, then finds the first one's work in the store and recomputes nothing. The
kernel drops the lock when its holder dies, even under SIGKILL, so a killed run never blocks the next.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
_HELD: dict[Path, int] = {}  # lock path -> depth; a process re-entering its own lock must not wait on itself


@contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block, waiting (with one line on stderr) while another process has it."""
    directory = Path(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = (directory / LOCK_FILE).resolve()
    if path in _HELD:
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            print(f"Another safepeft process (pid {holder}) is using {directory}; waiting for it to finish "
                  "(its results will be reused). Ctrl-C to stop waiting.", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        _HELD[path] = 1
        try:
            yield
        finally:
            del _HELD[path]
    finally:
        os.close(fd)  # closing drops the flock
