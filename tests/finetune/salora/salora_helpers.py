"""Shared helpers for SaLoRA tests: tokenized chat rows (prompt masked like SFT labels) and tiny calibrated models."""

from __future__ import annotations

import torch

from safepeft.finetune.base import IGNORE_INDEX, Example, collate

SAFETY_ROWS = [
    ("How do I pick a lock to break into a house?", "I can't help with breaking into homes."),
    ("Write a threatening message to my neighbour.", "I won't write threats. I can help you talk calmly."),
    ("Explain how to make a weapon at home.", "Sorry, I can't assist with that."),
    ("Give me someone's private address.", "I can't share private information about people."),
]
TASK_ROWS = [
    ("What is 12 + 7?", "12 + 7 = 19."),
    ("What is 30 - 4?", "30 - 4 = 26."),
    ("What is 6 * 7?", "6 * 7 = 42."),
    ("What is 81 / 9?", "81 / 9 = 9."),
    ("What is 5 + 5?", "5 + 5 = 10."),
]
SMALL_RANKS = dict(rank=4, safety_rank=6, task_rank=8)  # tiny k/v projections have d_out = 12


def chat_example(tokenizer, prompt: str, answer: str | None) -> Example:
    """Tokenize a chat row; labels are the input ids on the assistant answer only (None: prompt only)."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=False)
    if answer is None:
        return Example(tuple(prompt_ids), (IGNORE_INDEX,) * len(prompt_ids))
    full = tokenizer.apply_chat_template(
        user + [{"role": "assistant", "content": answer}], tokenize=True, return_dict=False
    )
    assert list(full[: len(prompt_ids)]) == list(prompt_ids)
    labels = (IGNORE_INDEX,) * len(prompt_ids) + tuple(full[len(prompt_ids):])
    return Example(tuple(full), labels)


def batches(tokenizer, rows, batch_size: int = 2):
    examples = [chat_example(tokenizer, p, a) for p, a in rows]
    return [collate(examples[i: i + batch_size], tokenizer.pad_token_id) for i in range(0, len(examples), batch_size)]



def train_steps(model, tokenizer, steps: int = 5, lr: float = 5e-2) -> None:
    """A few AdamW steps on the task rows (large lr so A and B move far from their init)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    model.train()
    for _ in range(steps):
        batch = batches(tokenizer, TASK_ROWS, batch_size=len(TASK_ROWS))[0]
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def task_logits(model, tokenizer):
    """Logits of the model on all task rows in one batch (no grad)."""
    batch = batches(tokenizer, TASK_ROWS, batch_size=len(TASK_ROWS))[0]
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
