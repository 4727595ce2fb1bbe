"""Progress for long loops, always on stderr (stdout stays for results: `--jsonl` output is pure JSONL).

On a terminal: a rich progress bar with ETA. Elsewhere (nohup, CI, a pipe): one plain line every
``SAFEPEFT_PROGRESS_EVERY`` seconds (default 30) and one at the end, with step, done/total, rate and ETA, so a
13-minute `align` leaves a readable log. Silent when disabled or when SAFEPEFT_NO_PROGRESS is set.

Batched work reports finished items, not finished batches: a caller that owns the bar (``CachedGenerator``) opens
``items_to(advance)``, and the generator inside (``HFGenerator``) opens ``item_bar(...)``, which then hands back the
caller's ``advance`` instead of a second bar, and calls it as rows of a batch finish.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_EVERY_S = 30.0
_SCOPE: ContextVar[str | None] = ContextVar("progress_scope", default=None)
_ITEMS: ContextVar[Callable[[float], None] | None] = ContextVar("progress_items", default=None)


@contextmanager
def scope(name: str) -> Iterator[None]:
    """Name what the bars opened inside the block work for (the audit's suite): `generate [builtin]`."""
    token = _SCOPE.set(name)
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def items_to(advance: Callable[[float], None]) -> Iterator[None]:
    """Inside the block, ``item_bar`` yields ``advance``: a wrapped generator reports its finished items to the
    caller's bar (as they finish, not a batch at a time) and opens no bar of its own."""
    token = _ITEMS.set(advance)
    try:
        yield
    finally:
        _ITEMS.reset(token)


@contextmanager
def item_bar(description: str, total: float | None, show: bool = True) -> Iterator[Callable[..., None]]:
    """``bar``, unless a caller opened ``items_to``: then its ``advance``, so one bar counts every item once."""
    outer = _ITEMS.get()
    if outer is None:
        with bar(description, total, show) as advance:
            yield advance
        return
    token = _ITEMS.set(None)  # anything this generator calls in turn (a guard's classifier) reports nowhere
    try:
        yield lambda n=1, **fields: outer(n)
    finally:
        _ITEMS.reset(token)


def reports(show: bool = True) -> bool:
    """Whether an ``item_bar(..., show)`` opened now would show anything (a generator skips its counting if not)."""
    return _ITEMS.get() is not None or enabled(show)


def _described(description: str) -> str:
    current = _SCOPE.get()
    return f"{description} [{current}]" if current else description


def enabled(requested: bool = True) -> bool:
    return requested and not os.environ.get("SAFEPEFT_NO_PROGRESS")


@contextmanager
def bar(description: str, total: float | None, show: bool = True) -> Iterator[Callable[..., None]]:
    """Yield an ``advance(n=1, **fields)`` callable that moves the progress display."""
    if not enabled(show):
        yield lambda *args, **kwargs: None
        return
    description = _described(description)
    if not sys.stderr.isatty():
        with _log_lines(description, total) as advance:
            yield advance
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: float = 1, **fields: Any) -> None:
            # Fields persist until new ones come, as on log lines: `cached=12` is set once, before any item.
            progress.update(task, advance=n, **({"info": _fields(fields)} if fields else {}))

        yield advance


@contextmanager
def _log_lines(description: str, total: float | None) -> Iterator[Callable[..., None]]:
    every = float(os.environ.get("SAFEPEFT_PROGRESS_EVERY", DEFAULT_EVERY_S))
    began = last = time.monotonic()
    state = {"done": 0.0, "info": ""}

    def line(final: bool = False) -> None:
        elapsed = time.monotonic() - began
        done = state["done"]
        rate = done / elapsed if elapsed > 0 else 0.0
        of = f"/{total:g}" if total else ""
        eta = f", eta {_clock((total - done) / rate)}" if total and rate > 0 and not final else ""
        info = f" {state['info']}" if state["info"] else ""
        word = "done" if final else "progress"
        print(f"[{word}] {description}: {done:g}{of} in {_clock(elapsed)} ({rate:.3g}/s{eta}){info}",
              file=sys.stderr, flush=True)

    def advance(n: float = 1, **fields: Any) -> None:
        nonlocal last
        state["done"] += n
        if fields:
            state["info"] = _fields(fields)
        now = time.monotonic()
        if now - last >= every:
            last = now
            line()

    yield advance
    line(final=True)


def _fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    with bar(description, total, show) as advance:
        for item in items:
            yield item
            advance()
