"""Build a guard by name for a run: `GuardFactory(name, ...)` is the `guard(generator) -> generator` hook that
`safepeft audit` composes before the run-store cache, and it describes the guard for results.json."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from safepeft.guard import GUARDS
from safepeft.guard.base import Guard, GuardedGenerator
from safepeft.records.results import ArtifactRef


class GuardFactory:
    """Wraps generators with one guard instance, built on first use (some guards score with the wrapped model)."""

    def __init__(self, name: str, guard_model: Any = None, guard_model_spec: str | None = None,
                 calibration: Sequence[str] | None = None) -> None:
        self.guard_class = GUARDS.get(name)  # unknown names fail before any model is loaded
        self.name = name
        self.guard_model = guard_model
        self.guard_model_spec = guard_model_spec
        self.calibration = calibration
        self.guard: Guard | None = None

    def __call__(self, inner: Any) -> GuardedGenerator:
        if self.guard is None:
            kwargs: dict[str, Any] = {"guard_model": self.guard_model, "calibration": self.calibration}
            if "inner" in inspect.signature(self.guard_class.create).parameters:
                kwargs["inner"] = inner
            self.guard = self.guard_class.create(**kwargs)
        return self.guard.wrap(inner)

    def ref(self) -> ArtifactRef:
        params: dict[str, Any] = dict(self.guard.params()) if self.guard is not None else {}
        params["stages"] = list(self.guard_class.stages)
        if self.guard_model_spec is not None:
            params["model"] = self.guard_model_spec
        fingerprint = getattr(self.guard_model, "fingerprint", None)
        return ArtifactRef(spec=self.name, fingerprint=fingerprint, params=params)
