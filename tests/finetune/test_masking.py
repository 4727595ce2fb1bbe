"""Loss masking: prompt tokens carry -100, assistant tokens (content + end of turn) keep their ids."""

from __future__ import annotations

import pytest
import torch

from safepeft.errors import DataError
from safepeft.finetune.base import IGNORE_INDEX, collate
from safepeft.finetune.chat import tokenize_conversation
from safepeft.finetune.loss import summed_loss

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "bye"},
    {"role": "assistant", "content": "ciao"},
]


def _labelled_text(tokenizer, example) -> list[str]:
    spans, current = [], []
    for token, label in zip(example.input_ids, example.labels, strict=True):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    if current:
        spans.append(tokenizer.decode(current))
    return spans


def test_only_assistant_turns_are_labelled(tiny_tokenizer):
    example = tokenize_conversation(tiny_tokenizer, CONVERSATION)
    assert _labelled_text(tiny_tokenizer, example) == ["hello<|im_end|>\n", "ciao<|im_end|>\n"]
    full = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert tiny_tokenizer.decode(list(example.input_ids)) == full
    labelled = [label for label in example.labels if label != IGNORE_INDEX]
    assert labelled == [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]


def test_prompt_tokens_match_what_generation_feeds(tiny_tokenizer):
    """The unlabelled prefix is exactly the prompt a generator renders (same template, same tokenization)."""
    example = tokenize_conversation(tiny_tokenizer, CONVERSATION[:3])
    first_label = next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)
    prompt = tiny_tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert list(example.input_ids[:first_label]) == tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]


def test_default_system_prompt_of_a_template_is_masked(tiny_tokenizer):
    template = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nDefault sys<|im_end|>\n{% endif %}"
                + tiny_tokenizer.chat_template)
    tiny_tokenizer.chat_template, saved = template, tiny_tokenizer.chat_template
    try:
        example = tokenize_conversation(tiny_tokenizer, CONVERSATION[1:3])
        assert _labelled_text(tiny_tokenizer, example) == ["hello<|im_end|>\n"]
        assert "Default sys" in tiny_tokenizer.decode(list(example.input_ids))
    finally:
        tiny_tokenizer.chat_template = saved


def test_unstable_template_is_an_error(tiny_tokenizer):
    saved = tiny_tokenizer.chat_template
    # Renders only the last message: earlier prefixes are not prefixes of the whole conversation.
    tiny_tokenizer.chat_template = "{{ messages[-1]['content'] }}"
    try:
        with pytest.raises(DataError, match="prefix-stable"):
            tokenize_conversation(tiny_tokenizer, CONVERSATION)
    finally:
        tiny_tokenizer.chat_template = saved


def test_masked_loss_equals_transformers_loss_without_full_logits(tiny_llama, tiny_tokenizer):
    model = tiny_llama().eval()
    examples = [tokenize_conversation(tiny_tokenizer, CONVERSATION[1:3]),
                tokenize_conversation(tiny_tokenizer, CONVERSATION)]
    batch = collate(examples, pad_token_id=2)
    with torch.no_grad():
        total, count = summed_loss(model, batch)
        reference = model(**batch).loss
    assert count == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(total / count, reference)
