"""Per-row progress inside one `model.generate` call: count rows that reached EOS, as they reach it.

`FinishedRows` is passed to transformers as a stopping criterion that stops nothing. Each decoding step it ORs "the
token just generated is an EOS id" into a boolean mask on the model's device (what transformers' own
`EosTokenCriteria` tests), so no row's stop is missed between reports. Every ``every`` steps it reads how many rows
have finished and reports the newly finished ones; rows that run to ``max_new_tokens`` are reported by ``finish``.

Reading the count must not stall the decode loop: on CUDA, transformers defers its own stop check so the host never
waits on the device, and a blocking ``.item()`` would undo that. So on CUDA the count is copied to pinned host memory
asynchronously and read at a later check, once its event says it has arrived; elsewhere (CPU, where there is nothing
to wait for, or MPS) it is read directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class FinishedRows:
    """A never-stopping `StoppingCriteria` that calls ``report(n)`` with the number of rows newly at EOS."""

    def __init__(self, eos_ids: Sequence[int], batch: int, device: Any, report: Callable[[int], None],
                 every: int = 8) -> None:
        self.eos = torch.tensor(list(eos_ids), device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,) reached EOS so far
        self.never = torch.zeros(batch, dtype=torch.bool, device=device)  # what this criterion answers: stop none
        self.report = report
        self.every = max(1, every)
        self.reported = 0
        self.steps = 0
        self.in_flight: tuple[torch.Tensor, Any] | None = None  # (pinned host count, CUDA event) of a pending copy

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        if self.eos.numel():
            self.finished |= torch.isin(input_ids[:, -1], self.eos)
        self.steps += 1
        if self.steps % self.every == 0:
            self._collect()
            self._send()
        return self.never

    def finish(self, batch: int) -> None:
        """After `generate` returns: every row is done, including those stopped by ``max_new_tokens``."""
        self._advance(batch)

    def _send(self) -> None:
        count = self.finished.sum()
        if count.device.type != "cuda":
            self._advance(int(count))
            return
        if self.in_flight is not None:  # the previous count has not arrived yet; wait for it rather than queue more
            return
        host = torch.empty((), dtype=count.dtype, pin_memory=True)
        host.copy_(count, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(count.device))  # the stream the copy was queued on
        self.in_flight = (host, event)

    def _collect(self) -> None:
        if self.in_flight is not None and self.in_flight[1].query():
            self._advance(int(self.in_flight[0]))
            self.in_flight = None

    def _advance(self, count: int) -> None:
        if count > self.reported:
            self.report(count - self.reported)
            self.reported = count
