"""Chat-format SFT examples: render with the model's chat template, label only the assistant turns.

The conversation is cut at turn boundaries found by rendering growing prefixes of it (the prompt up to each
assistant turn with the generation prompt opened, and up to the end of that turn). Each text segment is tokenized on
its own, exactly like a prompt at inference time, and the assistant segments (content + end-of-turn tokens) keep
their ids as labels; everything else gets IGNORE_INDEX. A template whose prefixes are not prefixes of the full
rendering (some templates rewrite earlier turns) cannot be masked this way and is reported as an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safepeft.errors import DataError
from safepeft.finetune.base import IGNORE_INDEX, Example


def render_segments(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, is_target) segments whose concatenation is the full rendering."""
    full = _render(tokenizer, messages, add_generation_prompt=False)
    cuts: list[tuple[int, int]] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = _render(tokenizer, messages[:index], add_generation_prompt=True)
        end = _render(tokenizer, messages[: index + 1], add_generation_prompt=False)
        previous_end = cuts[-1][1] if cuts else 0
        if not (full.startswith(end) and end.startswith(start) and len(start) >= previous_end):
            raise DataError(
                "The chat template is not prefix-stable (rendering a conversation's beginning is not a prefix of the "
                "whole), so the assistant tokens cannot be located.",
                "Pass a simpler template with --chat-template, or train on single-turn prompt/response rows.",
            )
        cuts.append((len(start), len(end)))
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for start, end in cuts:
        segments += [(full[cursor:start], False), (full[start:end], True)]
        cursor = end
    segments.append((full[cursor:], False))
    return [(text, target) for text, target in segments if text]


def tokenize_conversation(tokenizer: Any, messages: Sequence[dict[str, str]], source: str = "") -> Example:
    """Token ids and labels (-100 outside assistant turns) for one conversation."""
    input_ids: list[int] = []
    labels: list[int] = []
    for text, target in render_segments(tokenizer, messages):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if target else [IGNORE_INDEX] * len(ids)
    return Example(tuple(input_ids), tuple(labels), source)


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
    if not messages:
        return ""
    try:
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except Exception as exc:  # jinja raises TemplateError subclasses and templates call raise_exception(...)
        raise DataError(f"The chat template rejected a conversation: {exc}",
                        "Check the roles/order of the messages.") from exc
