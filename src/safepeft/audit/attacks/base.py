"""The attack contracts: a transform attack rewrites one request; an iterative attack searches with a model.

Transforms are pure and seeded: the same (request, seed) always gives the same prompt, in any process, because the
random generator is seeded with a string (``random.Random`` hashes strings with SHA-512, not Python's salted hash).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from safepeft.records.generation import Prompt


class Attack(ABC):
    """Common metadata. Subclasses set ``name``, ``description`` and ``paper``."""

    name: ClassVar[str]
    description: ClassVar[str]
    paper: ClassVar[str]
    """Where the attack comes from (URL)."""
    iterative: ClassVar[bool] = False
    """True for search attacks (PAIR, TAP) that query the target model themselves."""


class TransformAttack(Attack):
    """Rewrites a harmful request into an attack prompt (a string, or a chat for multi-turn/prefill attacks)."""

    needs_prefill: ClassVar[bool] = False
    """True when the prompt ends in an assistant prefill, which only open (local) models support."""

    def transform(self, request: str, seed: int = 0) -> Prompt:
        """The attack prompt for ``request``; deterministic in (attack, request, seed)."""
        return self.apply(request, random.Random(f"{self.name}|{seed}|{request}"))

    @abstractmethod
    def apply(self, request: str, rng: random.Random) -> Prompt:
        """Build the prompt; all randomness must come from ``rng``."""

    def decode(self, prompt: Prompt) -> str | None:
        """Recover the request from an attack prompt where the transform is invertible, else None."""
        return None


def pick(rng: random.Random, options: tuple[str, ...]) -> str:
    """One template variant, chosen by the seeded generator."""
    return options[rng.randrange(len(options))]


def prefill_text(prompt: Prompt) -> str:
    """The assistant prefill a prompt ends with ('' when it has none)."""
    if isinstance(prompt, list) and prompt and prompt[-1]["role"] == "assistant":
        return prompt[-1]["content"]
    return ""


def full_response(prompt: Prompt, completion: str) -> str:
    """What the user sees: the prefill the model continued, followed by its completion."""
    return prefill_text(prompt) + completion


def describe_attack(attack: Any) -> dict[str, Any]:
    """Provenance for results.json: name, paper and (for iterative attacks) the search parameters."""
    info: dict[str, Any] = {"name": attack.name, "paper": attack.paper}
    spec = getattr(attack, "spec", None)
    if spec is not None:
        info["params"] = spec.model_dump(mode="json")
    return info
