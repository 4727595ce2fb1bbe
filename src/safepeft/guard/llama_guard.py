"""`llama-guard`: a Llama Guard model (any Generator: local weights or a served endpoint) screening the request
(input filter) and the answer (output filter) with the shared Llama Guard 2 format (`safepeft.classifiers`).

Unparseable guard output fails open (the text is shown) and is reported as such: a guard model that does not
speak the format would otherwise block everything and hide the misconfiguration behind a perfect ASR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safepeft.classifiers import llama_guard as lg
from safepeft.errors import ConfigError
from safepeft.guard.base import Guard, as_generator, request_text, shown_text
from safepeft.models.protocol import Generator
from safepeft.records.base import Spec
from safepeft.records.generation import GenParams, Prompt

DEFAULT_MODEL = "meta-llama/Meta-Llama-Guard-2-8B"


class LlamaGuardSpec(Spec):
    """Where Llama Guard screens."""

    check_input: bool = True
    """Screen the user's request before the model sees it."""
    check_output: bool = True
    """Screen the model's answer (with the request as context)."""
    max_new_tokens: int = 12
    """Guard generation budget ('unsafe\\nS1,S2' fits)."""


class LlamaGuardGuard(Guard):
    """Llama Guard screens the request and the answer; 'unsafe' blocks."""

    name = "llama-guard"
    description = "Llama Guard screens the request and the answer; 'unsafe' blocks."
    paper = "https://arxiv.org/abs/2312.06674"
    stages = ("input", "output")
    spec_class = LlamaGuardSpec

    def __init__(self, guard_model: Generator, spec: LlamaGuardSpec | None = None) -> None:
        self.model = guard_model
        self.spec = spec or LlamaGuardSpec()
        self.unparseable = 0
        """Guard outputs that were neither 'safe' nor 'unsafe' (shown, not blocked)."""

    @classmethod
    def create(cls, guard_model: Any = None, calibration: Sequence[str] | None = None) -> LlamaGuardGuard:
        if guard_model is None:
            raise ConfigError("The llama-guard guard needs a Llama Guard model.",
                              f"Pass --guard-model SPEC (e.g. {DEFAULT_MODEL}).")
        return cls(as_generator(guard_model))

    def identity(self) -> dict:
        return {**super().identity(), "model": self.model.identity()}

    def check_inputs(self, prompts: Sequence[Prompt]) -> list[str | None]:
        if not self.spec.check_input:
            return [None] * len(prompts)
        return self._screen([lg.build_prompt(request_text(p)) for p in prompts])

    def check_outputs(self, prompts: Sequence[Prompt], outputs: Sequence[str], params: GenParams,
                      inner: Generator) -> list[str | None]:
        if not self.spec.check_output:
            return [None] * len(prompts)
        return self._screen([lg.build_prompt(request_text(p), shown_text(p, o))
                             for p, o in zip(prompts, outputs, strict=True)])

    def _screen(self, guard_prompts: list[str]) -> list[str | None]:
        params = GenParams(max_new_tokens=self.spec.max_new_tokens, chat=False)
        reasons: list[str | None] = []
        for output in self.model.generate(guard_prompts, params):
            verdict = lg.parse_output(output)
            self.unparseable += verdict.safe is None
            reasons.append(None if verdict.safe is not False else "unsafe " + ",".join(verdict.codes))
        return reasons
