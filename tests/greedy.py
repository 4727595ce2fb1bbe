"""A reference greedy decoder for tests: what a generator must return, computed as a plain loop over full forwards.

No KV cache, no batching, no padding, no `model.generate`: one forward of the whole sequence per token and the
argmax of the last position. Generators are checked against it, so a broken chat template, a dropped adapter or a
wrong `max_new_tokens` shows up as different text.
"""

from __future__ import annotations

from typing import Any

import torch


def render_chat(tokenizer: Any, prompt: str | list[dict[str, str]]) -> list[int]:
    """Token ids of a prompt as a chat: the assistant turn opened, or an assistant prefill continued."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    prefill = messages[-1]["role"] == "assistant"
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not prefill,
                                         continue_final_message=prefill)
    return tokenizer(text, add_special_tokens=False)["input_ids"]  # the template writes the special tokens


@torch.no_grad()
def greedy_text(model: Any, tokenizer: Any, prompt: str | list[dict[str, str]], max_new_tokens: int) -> str:
    """The greedy continuation of ``prompt`` (chat-templated), stopped at EOS, decoded without special tokens."""
    ids = render_chat(tokenizer, prompt)
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])} - {None}
    new: list[int] = []
    for _ in range(max_new_tokens):
        sequence = torch.tensor([ids + new])
        logits = model(input_ids=sequence, attention_mask=torch.ones_like(sequence)).logits
        token = int(logits[0, -1].argmax())
        new.append(token)
        if token in eos:
            break
    return tokenizer.decode(new, skip_special_tokens=True)
