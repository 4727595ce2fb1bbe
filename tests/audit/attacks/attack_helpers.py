"""Scripted attackers and counting wrappers for the PAIR/TAP tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from safepeft.models.doubles import FixedGenerator
from safepeft.records.generation import prompt_text


def scripted_attacker(bad_every: int = 0) -> FixedGenerator:
    """An attacker that continues PAIR's JSON prefill with 'variant N' prompts (N counts calls); every
    `bad_every`-th answer is unparseable, to exercise the retries."""
    state = {"n": 0}

    def answer(prompt: Any) -> str:
        state["n"] += 1
        n = state["n"]
        if bad_every and n % bad_every == 0:
            return "I am not sure what to write here"
        body = f"variant {n} of the request"
        seed = prompt[-1]["content"]
        return body + '"' if seed.endswith('"prompt": "') else f'try another angle", "prompt": "{body}"'

    return FixedGenerator(answer, name="scripted-attacker")


class Counting:
    """Counts prompts that reach the wrapped generator; raises KeyboardInterrupt after `kill_after` calls."""

    def __init__(self, inner: Any, kill_after: int | None = None) -> None:
        self.inner = inner
        self.kill_after = kill_after
        self.calls = 0
        self.prompts: Counter[str] = Counter()

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def generate(self, prompts: Any, params: Any) -> list[str]:
        if self.kill_after is not None and self.calls >= self.kill_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.prompts.update(prompt_text(p) + f"|seed={params.seed}" for p in prompts)
        return self.inner.generate(prompts, params)

    def loglikelihood(self, requests: Any) -> list[float]:
        return self.inner.loglikelihood(requests)
