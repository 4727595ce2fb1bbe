"""From calibration batches to per-module SaLoRA factors: safety pass → U_s, task pass → U_t, then A₀/B₀.

Both passes run on the unmodified model. (The official code computes the task features layer by layer after earlier
layers were already swapped for W_res without their LoRA term, a small distribution shift; here the step-0 SaLoRA
model equals the base model, so the features are the ones the trained model actually starts from.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from safepeft.errors import ConfigError
from safepeft.finetune.salora.calibration import collect_grams
from safepeft.finetune.salora.init import ModuleInit, task_init
from safepeft.finetune.salora.subspace import top_output_directions

Batches = Iterable[dict[str, torch.Tensor]]


def check_ranks(model: nn.Module, names: Sequence[str], rank: int, safety_rank: int, task_rank: int) -> None:
    """Every rank must fit every target: r ≤ min(d_out, d_in), r_t ≤ d_out, and r_s < d_out (else C = 0)."""
    for name in names:
        d_out, d_in = model.get_submodule(name).weight.shape
        problems = []
        if rank > min(d_out, d_in):
            problems.append(f"rank {rank} > min(d_out, d_in) = {min(d_out, d_in)}")
        if safety_rank >= d_out:
            problems.append(f"safety_rank {safety_rank} ≥ d_out = {d_out} (C = I − U_s·U_sᵀ would be 0)")
        if task_rank > d_out:
            problems.append(f"task_rank {task_rank} > d_out = {d_out}")
        if problems:
            raise ConfigError(
                f"SaLoRA ranks do not fit target {name} of shape ({d_out}, {d_in}): {'; '.join(problems)}.",
                "Lower the rank options (--set rank=/safety_rank=/task_rank=) or target larger projections.",
            )


def build_inits(
    model: nn.Module,
    names: Sequence[str],
    safety_batches: Batches,
    task_batches: Batches,
    *,
    rank: int,
    safety_rank: int,
    task_rank: int,
    progress: Any = None,
) -> tuple[dict[str, ModuleInit], dict[str, int]]:
    """({module name: ModuleInit}, {"safety_tokens": n, "task_tokens": n}); ``progress()`` ticks once per batch."""
    check_ranks(model, names, rank, safety_rank, task_rank)
    weights = {name: model.get_submodule(name).weight for name in names}
    grams, safety_tokens = collect_grams(model, names, safety_batches, progress)
    safety = {name: top_output_directions(weights[name], grams[name], safety_rank) for name in names}
    del grams  # one pass's Grams in memory at a time
    grams, task_tokens = collect_grams(model, names, task_batches, progress)
    task = {name: top_output_directions(weights[name], grams[name], task_rank) for name in names}
    del grams
    for kind, tokens, needed in (("safety", safety_tokens, safety_rank), ("task", task_tokens, task_rank)):
        if tokens < needed:
            warnings.warn(
                f"SaLoRA {kind} calibration saw only {tokens} response tokens for a rank-{needed} subspace; "
                "the remaining directions are arbitrary. Use more calibration samples.",
                stacklevel=2,
            )
    inits = {}
    for name in names:
        a0, b0 = task_init(weights[name], task[name], rank)
        inits[name] = ModuleInit(lora_A0=a0, lora_B0=b0, safety_basis=safety[name])
    return inits, {"safety_tokens": safety_tokens, "task_tokens": task_tokens}
