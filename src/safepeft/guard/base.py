"""The guard contract and the guarded Generator.

A guard decides, per request, whether the wrapped model's answer may be shown. `Guard.respond` runs the input
check, generates for what passed, then runs the output check; guards that need more (SmoothLLM) override it.
Log-likelihood scoring passes through unguarded: guards act on generated text, and multiple-choice scoring
produces none.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from safepeft.classifiers.blocked import BLOCKED_RESPONSE
from safepeft.models.protocol import Generator
from safepeft.records.base import Spec
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt


@dataclass(frozen=True)
class Decision:
    """A guard's answer for one request."""

    output: str
    blocked: bool
    stage: str | None = None
    """input | output | vote, for blocked requests."""
    reason: str = ""


def request_text(prompt: Prompt) -> str:
    """The user's request a guard screens: the prompt itself, or the last user turn of a chat."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else ""


def shown_text(prompt: Prompt, output: str) -> str:
    """The answer as the user sees it: an assistant prefill the model continued, then the output."""
    if isinstance(prompt, list) and prompt and prompt[-1]["role"] == "assistant":
        return prompt[-1]["content"] + output
    return output


def as_generator(model: Any) -> Generator:
    """A guard model given as a loaded model (`load_model(...)`) or already as a Generator."""
    return model.generator(progress=False) if hasattr(model, "generator") else model


def blocked(stage: str, reason: str = "") -> Decision:
    return Decision(BLOCKED_RESPONSE, True, stage, reason)


class Guard(ABC):
    """Base of registered guards. Subclasses override `check_inputs` and/or `check_outputs` (or `respond`)."""

    name: ClassVar[str]
    description: ClassVar[str]
    paper: ClassVar[str]
    stages: ClassVar[tuple[str, ...]]
    """Where the guard acts: ("input",), ("output",), ("input", "output") or ("vote",)."""
    spec_class: ClassVar[type[Spec]]
    """Pydantic spec of the guard's parameters (all have defaults); an instance's own values are ``self.spec``."""

    @classmethod
    def create(cls, guard_model: Any = None, calibration: Sequence[str] | None = None) -> Guard:
        """Build from CLI-level inputs: an optional guard model (loaded model or Generator) and benign prompts."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What determines the guard's decisions (part of the guarded generator's cache key)."""
        return {"guard": self.name, **self.params()}

    def params(self) -> dict[str, Any]:
        """Parameters recorded in results.json (threshold, copies ...)."""
        spec = getattr(self, "spec", None)
        return spec.model_dump(mode="json") if spec is not None else {}

    def check_inputs(self, prompts: Sequence[Prompt]) -> list[str | None]:
        """Per prompt: None to let it through, or the reason to block it."""
        return [None] * len(prompts)

    def check_outputs(self, prompts: Sequence[Prompt], outputs: Sequence[str], params: GenParams,
                      inner: Generator) -> list[str | None]:
        """Per (prompt, output): None to show the output, or the reason to block it."""
        return [None] * len(prompts)

    def respond(self, inner: Generator, prompts: Sequence[Prompt], params: GenParams) -> list[Decision]:
        decisions: list[Decision | None] = [None] * len(prompts)
        for i, reason in enumerate(self.check_inputs(prompts)):
            if reason is not None:
                decisions[i] = blocked("input", reason)
        passed = [i for i, d in enumerate(decisions) if d is None]
        if passed:
            chosen = [prompts[i] for i in passed]
            outputs = inner.generate(chosen, params)
            verdicts = self.check_outputs(chosen, outputs, params, inner)
            for i, output, reason in zip(passed, outputs, verdicts, strict=True):
                decisions[i] = Decision(output, False) if reason is None else blocked("output", reason)
        return [d for d in decisions if d is not None]

    def wrap(self, inner: Generator) -> GuardedGenerator:
        return GuardedGenerator(inner, self)


class GuardedGenerator:
    """A Generator whose answers pass through a guard; `decisions` keeps every decision of this process."""

    blocked_response = BLOCKED_RESPONSE

    def __init__(self, inner: Generator, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard
        self.decisions: list[Decision] = []

    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity(), "guard": self.guard.identity()}

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        decisions = self.guard.respond(self.inner, prompts, params)
        self.decisions.extend(decisions)
        return [d.output for d in decisions]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return self.inner.loglikelihood(requests)
