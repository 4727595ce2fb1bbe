"""The guardrail's fixed refusal, shared by guards (which return it) and audit suites (which count it as blocked)."""

from __future__ import annotations

BLOCKED_RESPONSE = "I'm sorry, but I can't help with that. [blocked by guardrail]"
"""Returned instead of the model's answer when a guard blocks a request. The bracketed tag keeps it distinct from
any refusal a model writes, so blocks are counted exactly; the refusal classifier reads it as a refusal."""


def is_blocked(text: str | None) -> bool:
    """True when an output is the guard's fixed refusal."""
    return text == BLOCKED_RESPONSE
