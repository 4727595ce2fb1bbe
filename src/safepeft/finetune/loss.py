"""Cross-entropy on labelled positions only, without materialising logits for the prompt.

A forward pre-hook on the output embedding (lm_head) keeps only the hidden states whose next token is a label, so
the vocabulary projection runs on N target positions instead of batch × sequence: for a 128k vocabulary at 4 × 2048
tokens that is the difference between ~4 GiB of logits and a few hundred MiB. Methods that prepend virtual tokens
(prompt tuning, p-tuning) make the hidden sequence longer than the labels; the labels align with its right edge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from safepeft.finetune.base import IGNORE_INDEX


@contextmanager
def labelled_logits_only(model: Any, labels: torch.Tensor) -> Iterator[torch.Tensor]:
    """While active, ``model(...).logits`` is (N, vocab) for the N labelled next-token positions.

    Yields the N target token ids in the same order.
    """
    head = model.get_output_embeddings()
    keep = labels[:, 1:] != IGNORE_INDEX  # (batch, seq-1): position t predicts token t+1

    def select(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden = args[0]  # (batch, virtual + seq, hidden)
        offset = hidden.shape[1] - labels.shape[1]
        return (hidden[:, offset : hidden.shape[1] - 1][keep], *args[1:])  # (N, hidden)

    handle = head.register_forward_pre_hook(select)
    try:
        yield labels[:, 1:][keep]
    finally:
        handle.remove()


def summed_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies (fp32) over the batch's labelled tokens, and their count."""
    with labelled_logits_only(model, batch["labels"]) as targets:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    return loss, int(targets.numel())
