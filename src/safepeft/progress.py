"""Rich progress bars for long loops; silent when disabled or when SAFEPEFT_NO_PROGRESS is set."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def enabled(requested: bool = True) -> bool:
    return requested and not os.environ.get("SAFEPEFT_NO_PROGRESS")


@contextmanager
def bar(description: str, total: float | None, show: bool = True) -> Iterator[Any]:
    """Yield an ``advance(n=1, **fields)`` callable that moves a rich progress bar (with ETA)."""
    if not enabled(show):
        yield lambda *args, **kwargs: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.progress import TimeRemainingColumn

    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: float = 1, **fields: Any) -> None:
            info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task, advance=n, info=info)

        yield advance


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    with bar(description, total, show) as advance:
        for item in items:
            yield item
            advance()
