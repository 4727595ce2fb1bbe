"""The Generator protocol: how every stage talks to a model (local HF, llama.cpp, an API, a guard, a test double).

Stages never import each other; an audit scores a guarded or quantized model because both are Generators.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt


@runtime_checkable
class Generator(Protocol):
    """Text in, text out; plus log-likelihood scoring for multiple-choice benchmarks."""

    def identity(self) -> dict[str, Any]:
        """What determines this generator's outputs (model/adapter fingerprints, dtype, backend, guard ...).

        Used as part of the run store's cache key: two generators with equal identity give equal outputs.
        """
        ...

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        """One completion per prompt, in order."""
        ...

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context, in order."""
        ...
