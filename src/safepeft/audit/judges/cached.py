"""CachedJudge: verdicts live in the run store, so a killed audit resumes without judging anything twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safepeft import progress
from safepeft.audit.judges.base import Judge, JudgeInput, Verdict
from safepeft.records.results import ArtifactRef
from safepeft.store.sqlite import RunStore, request_key

NAMESPACE = "judge"


class CachedJudge:
    """Wraps a judge: stored verdicts are reused; new ones are stored chunk by chunk as they are made."""

    def __init__(self, inner: Judge, store: RunStore, chunk_size: int = 32, show_progress: bool = True) -> None:
        self.inner = inner
        self.store = store
        self.chunk_size = chunk_size
        self.show_progress = show_progress

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def measures(self) -> str:
        return self.inner.measures

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def ref(self) -> ArtifactRef:
        return self.inner.ref()

    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        ident = self.identity()
        keys = [request_key("judge", ident, item.model_dump(mode="json")) for item in inputs]
        done: dict[str, Verdict] = {}
        for key in dict.fromkeys(keys):
            stored = self.store.get_record(NAMESPACE, key)
            if stored is not None:
                done[key] = Verdict.model_validate(stored)
        pending = [(key, item) for key, item in dict(zip(keys, inputs, strict=True)).items() if key not in done]
        with progress.bar(f"judge ({self.name})", len(pending), self.show_progress and bool(pending)) as advance:
            for start in range(0, len(pending), self.chunk_size):
                chunk = pending[start : start + self.chunk_size]
                for (key, _), verdict in zip(chunk, self.inner.judge([item for _, item in chunk]), strict=True):
                    self.store.put_record(NAMESPACE, key, verdict.model_dump(mode="json"))
                    done[key] = verdict
                advance(len(chunk))
        return [done[key] for key in keys]
