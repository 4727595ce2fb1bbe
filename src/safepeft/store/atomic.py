"""Write files so that a crash leaves either the old or the new content, never half of it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the result should be like any new file
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temp dir beside ``target`` to write into. On success its files are fsynced and it takes
    ``target``'s place (an existing ``target`` is moved aside first and removed after, so a crash leaves the old or
    the new directory); on any error the temp dir is removed and ``target`` is untouched. Temp dirs are named
    ``.<target name>.tmp-*``, so callers can sweep ones left by a killed process."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-"))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the result should be like any new dir
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def sweep_stale(target: str | Path) -> list[Path]:
    """Remove the temp and aside directories a killed writer of ``target`` left beside it.

    Each is named with its writer's pid (``.<name>.tmp-<pid>-*``, ``.<name>.old.<pid>``); one whose process is
    gone is debris (a killed quantize leaves hundreds of MB), one whose process still runs is left alone, so two
    writers never sweep each other's work in progress."""
    target = Path(target)
    removed = []
    for pattern, pid_of in ((f".{target.name}.tmp-*", _tmp_pid), (f".{target.name}.old.*", _old_pid)):
        for path in target.parent.glob(pattern):
            pid = pid_of(path.name, target.name)
            if pid is None or _alive(pid):
                continue
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _tmp_pid(name: str, target: str) -> int | None:
    head = name[len(f".{target}.tmp-"):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _old_pid(name: str, target: str) -> int | None:
    tail = name[len(f".{target}.old."):]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old.{os.getpid()}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink()
