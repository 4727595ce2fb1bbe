"""What a Generator is asked: prompts, decoding parameters and log-likelihood requests."""

from __future__ import annotations

import json
from typing import TypeAlias

from pydantic import Field, field_validator
from typing_extensions import TypedDict

from safepeft.records.base import Spec


class Message(TypedDict):
    """One chat turn, OpenAI style."""

    role: str
    content: str


# A prompt is either a single user turn (str) or a full chat. A chat whose last message is from the assistant is a
# *prefill*: the model continues that assistant turn instead of starting a new one.
Prompt: TypeAlias = str | list[Message]


def prompt_text(prompt: Prompt) -> str:
    """A stable text form of a prompt, for hashing and for display."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False, sort_keys=True)


class GenParams(Spec):
    """Decoding parameters. Everything here changes the output, so all of it is part of the cache key."""

    max_new_tokens: int = Field(128, ge=1)
    """Maximum number of tokens generated after the prompt."""
    temperature: float = Field(0.0, ge=0.0)
    """0 means greedy decoding; above 0 samples with this temperature (seeded)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass; only used when temperature > 0."""
    seed: int = 0
    """Seed for sampling; greedy decoding ignores it."""
    system_prompt: str | None = None
    """System message put before every chat prompt; None keeps the chat template's own default."""
    stop: tuple[str, ...] = ()
    """Extra stop strings: the output is cut at the first one (EOS always stops)."""
    chat: bool = True
    """Apply the chat template to string prompts; False feeds the raw text (base models, judges with own format)."""

    @field_validator("stop", mode="before")
    @classmethod
    def _tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value


class LoglikelihoodRequest(Spec):
    """Score log P(continuation | context). Requests sharing a context share one forward pass of it."""

    context: Prompt
    """Raw text (used as is) or a chat (templated with the generation prompt, so the continuation is the reply)."""
    continuation: str
    """Text whose log-probability is summed, token by token."""
    system_prompt: str | None = None
    """System message for chat contexts; None keeps the template default."""
