"""Guardrails: a guard wraps any Generator and returns a Generator (`guard.wrap(generator)`).

Input filters screen the prompt before the model sees it, output filters screen the answer, SmoothLLM replaces
generation with a vote over perturbed copies. A blocked request gets the fixed `BLOCKED_RESPONSE` and is counted as
blocked by the audit (`GuardedGenerator.blocked_response`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.guard.base import Guard

GUARDS: Registry[type[Guard]] = Registry("guard", "safepeft list guards", base="safepeft.guard.base:Guard")
GUARDS.register("llama-guard", "safepeft.guard.llama_guard:LlamaGuardGuard")
GUARDS.register("refusal-classifier", "safepeft.guard.refusal:RefusalClassifierGuard")
GUARDS.register("perplexity", "safepeft.guard.perplexity:PerplexityGuard")
GUARDS.register("smoothllm", "safepeft.guard.smoothllm:SmoothLLMGuard")
