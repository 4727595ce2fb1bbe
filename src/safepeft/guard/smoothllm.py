"""`smoothllm`: SmoothLLM (Robey et al. 2023, https://arxiv.org/abs/2310.03684).

Adversarial prompts are brittle to character-level changes. SmoothLLM answers N randomly perturbed copies of the
prompt, calls each answer jailbroken or not, and takes the majority: if most copies were jailbroken it returns one
of those answers, otherwise the request is blocked. Defaults are the official code's: random *swap* perturbations
of q = 10% of the characters, N = 10 copies, majority threshold 0.5.

Deviation: the official code calls an answer jailbroken when it contains none of a short list of refusal
prefixes; we use the shared refusal classifier (complied or partial = jailbroken), which handles apologies
followed by compliance and other cases the prefix list misses. A non-majority result here is the fixed refusal
(recorded as blocked) rather than one of the model's own refusals.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from safepeft.classifiers.refusal import classify_refusal
from safepeft.guard.base import Decision, Guard, blocked, shown_text
from safepeft.models.protocol import Generator
from safepeft.records.base import Spec
from safepeft.records.generation import GenParams, Prompt, prompt_text

ALPHABET = string.printable


class SmoothLLMSpec(Spec):
    """SmoothLLM parameters (defaults from the official code)."""

    n_copies: int = Field(10, ge=1)
    """Perturbed copies answered per request."""
    perturbation: Literal["swap", "insert", "patch"] = "swap"
    """Character perturbation: replace random characters, insert random characters, or replace a random span."""
    rate: float = Field(0.10, gt=0.0, le=1.0)
    """Share q of the characters perturbed."""
    seed: int = 0
    """Seed of the perturbations (each copy's generator is seeded by (seed, prompt, copy index))."""


def perturb(text: str, kind: str, rate: float, rng: random.Random) -> str:
    """One SmoothLLM perturbation of ``text`` (Algorithm 2 of the paper)."""
    n = int(len(text) * rate)
    if n == 0:
        return text
    chars = list(text)
    if kind == "swap":
        for i in rng.sample(range(len(chars)), n):
            chars[i] = rng.choice(ALPHABET)
    elif kind == "insert":
        for i in sorted(rng.sample(range(len(chars)), n), reverse=True):
            chars.insert(i + 1, rng.choice(ALPHABET))
    else:  # patch: one contiguous span of n characters
        start = rng.randrange(len(chars) - n + 1)
        chars[start : start + n] = [rng.choice(ALPHABET) for _ in range(n)]
    return "".join(chars)


def perturb_prompt(prompt: Prompt, spec: SmoothLLMSpec, copy: int) -> Prompt:
    """Perturb the request text (a string prompt, or the last user turn of a chat)."""
    rng = random.Random(f"{spec.seed}|{copy}|{prompt_text(prompt)}")
    if isinstance(prompt, str):
        return perturb(prompt, spec.perturbation, spec.rate, rng)
    messages = [dict(m) for m in prompt]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[last_user]["content"] = perturb(messages[last_user]["content"], spec.perturbation, spec.rate, rng)
    return messages  # type: ignore[return-value]


class SmoothLLMGuard(Guard):
    """Answer perturbed copies of the prompt and take a majority vote on whether they were jailbroken."""

    name = "smoothllm"
    description = "Answer perturbed copies of the prompt and take a majority vote on whether they were jailbroken."
    paper = "https://arxiv.org/abs/2310.03684"
    stages = ("vote",)
    spec_class = SmoothLLMSpec

    def __init__(self, spec: SmoothLLMSpec | None = None) -> None:
        self.spec = spec or SmoothLLMSpec()

    @classmethod
    def create(cls, guard_model: Any = None, calibration: Sequence[str] | None = None) -> SmoothLLMGuard:
        return cls()

    def respond(self, inner: Generator, prompts: Sequence[Prompt], params: GenParams) -> list[Decision]:
        n = self.spec.n_copies
        copies = [perturb_prompt(p, self.spec, c) for p in prompts for c in range(n)]
        outputs = inner.generate(copies, params)
        decisions = []
        for index, prompt in enumerate(prompts):
            block = range(index * n, (index + 1) * n)
            jailbroken = [j for j in block if classify_refusal(shown_text(copies[j], outputs[j])).complied]
            if len(jailbroken) / n > 0.5:
                pick = random.Random(f"{self.spec.seed}|pick|{prompt_text(prompt)}").choice(jailbroken)
                decisions.append(Decision(outputs[pick], False))
            else:
                decisions.append(blocked("vote", f"{len(jailbroken)}/{n} perturbed copies jailbroken"))
        return decisions
