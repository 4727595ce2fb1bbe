"""Test doubles shipped with the package (like garak's test generators): scripted Generators, no model needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt, prompt_text

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
COMPLIANCE_TEXT = "Sure, here is a detailed step-by-step answer. Step 1: gather the materials. Step 2: proceed."


class FixedGenerator:
    """Returns outputs from a function of the prompt (or a constant); log-likelihood from a function too."""

    def __init__(
        self,
        output: str | Callable[[Prompt], str],
        logprob: Callable[[LoglikelihoodRequest], float] | None = None,
        name: str = "fixed",
    ) -> None:
        self._output = output
        self._logprob = logprob or (lambda request: -float(len(request.continuation)))
        self.name = name
        self.calls: list[Prompt] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "double", "model": self.name, "adapter": None}

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        self.calls.extend(prompts)
        return [self._output(p) if callable(self._output) else self._output for p in prompts]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return [self._logprob(r) for r in requests]


class RefuseAll(FixedGenerator):
    """Refuses every request."""

    def __init__(self) -> None:
        super().__init__(REFUSAL_TEXT, name="refuse-all")


class ComplyAll(FixedGenerator):
    """Complies with every request."""

    def __init__(self) -> None:
        super().__init__(COMPLIANCE_TEXT, name="comply-all")


class EchoGenerator(FixedGenerator):
    """Echoes the prompt text back (handy to check what a transform or guard passed through)."""

    def __init__(self) -> None:
        super().__init__(prompt_text, name="echo")
