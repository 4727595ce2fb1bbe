"""CachedGenerator: put the run store in front of any Generator, so work survives kills and is never redone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from safepeft import progress
from safepeft.models.protocol import Generator
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt, prompt_text
from safepeft.store.sqlite import RunStore, request_key


class CachedGenerator:
    """Answers from the store when it can; computes the rest in chunks, committing each chunk as it finishes."""

    def __init__(self, inner: Generator, store: RunStore, chunk_size: int = 16, progress: bool = True) -> None:
        self.inner = inner
        self.store = store
        self.chunk_size = chunk_size
        self.progress = progress

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        ident = self.identity()
        params_json = params.model_dump(mode="json")
        keys = [request_key("generate", ident, prompt_text(p), params_json) for p in prompts]
        done = self.store.get_generations(keys)
        todo: dict[str, Prompt] = {}
        for key, prompt in zip(keys, prompts, strict=True):
            if key not in done:
                todo.setdefault(key, prompt)
        # Similar lengths in one chunk keep the inner generator's padding low.
        pending = sorted(todo.items(), key=lambda kv: len(prompt_text(kv[1])))
        with progress.bar("generate", len(pending), self.progress and bool(pending)) as advance, \
                _inner_progress_off(self.inner):
            _show_cached(advance, len(set(keys)) - len(pending))
            for start in range(0, len(pending), self.chunk_size):
                chunk = pending[start : start + self.chunk_size]
                began = time.perf_counter()
                with _ItemsOfChunk(advance, len(chunk)):
                    outputs = self.inner.generate([p for _, p in chunk], params)
                seconds = (time.perf_counter() - began) / len(chunk)
                self.store.put_generations(
                    {"key": k, "model_fingerprint": str(ident.get("model")), "adapter_fingerprint":
                     ident.get("adapter"), "prompt": prompt_text(p), "params": params_json, "output": out,
                     "seconds": seconds}
                    for (k, p), out in zip(chunk, outputs, strict=True)
                )
                done.update({k: out for (k, _), out in zip(chunk, outputs, strict=True)})
        return [done[k] for k in keys]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        ident = self.identity()
        keys = [request_key("loglikelihood", ident, r.model_dump(mode="json")) for r in requests]
        done = self.store.get_loglikelihoods(keys)
        todo = {k: r for k, r in zip(keys, requests, strict=True) if k not in done}
        pending = list(todo.items())
        step = self.chunk_size * 8  # scoring is cheap per request; commit less often
        with progress.bar("loglikelihood", len(pending), self.progress and bool(pending)) as advance, \
                _inner_progress_off(self.inner):
            _show_cached(advance, len(set(keys)) - len(pending))
            for start in range(0, len(pending), step):
                chunk = pending[start : start + step]
                with _ItemsOfChunk(advance, len(chunk)):
                    values = self.inner.loglikelihood([r for _, r in chunk])
                self.store.put_loglikelihoods(
                    {"key": k, "model_fingerprint": str(ident.get("model")),
                     "adapter_fingerprint": ident.get("adapter"), "request": r.model_dump_json(), "logprob": v}
                    for (k, r), v in zip(chunk, values, strict=True)
                )
                done.update({k: v for (k, _), v in zip(chunk, values, strict=True)})
        return [done[k] for k in keys]


def _show_cached(advance: Callable[..., None], cached: int) -> None:
    """Items answered from the store are shown beside the bar, not counted in it: they would fake the rate and ETA."""
    if cached:
        advance(0, cached=cached)


class _ItemsOfChunk:
    """The bar moves as the wrapped generator finishes items of a chunk (``progress.items_to``), never past the
    chunk's size; what it did not report (a backend that reports nothing) is counted when the chunk returns."""

    def __init__(self, advance: Callable[..., None], size: int) -> None:
        self.advance, self.size, self.reported = advance, size, 0
        self._block = progress.items_to(self._report)

    def _report(self, n: float) -> None:
        n = min(n, self.size - self.reported)
        if n > 0:
            self.reported += n
            self.advance(n)

    def __enter__(self) -> None:
        self._block.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._block.__exit__(*exc)
        if exc[0] is None:
            self._report(self.size - self.reported)


@contextmanager
def _inner_progress_off(inner: Any) -> Iterator[None]:
    """One bar for the whole request set: silence the wrapped generator's per-chunk bars."""
    previous = getattr(inner, "progress", None)
    if previous is not None:
        inner.progress = False
    try:
        yield
    finally:
        if previous is not None:
            inner.progress = previous
