"""Fixtures for SaLoRA tests (helpers live in salora_helpers.py)."""

from __future__ import annotations

import pytest
from salora_helpers import SAFETY_ROWS, SMALL_RANKS, TASK_ROWS, batches


@pytest.fixture
def calibrated(tiny_llama, tiny_tokenizer):
    """Factory: (base model, SaLoRA model, inits) for the given target patterns; base and SaLoRA share nothing."""
    from safepeft.finetune.salora.build import build_inits
    from safepeft.finetune.salora.layer import attach
    from safepeft.finetune.salora.targets import resolve_targets

    def make(patterns=("q_proj", "v_proj"), scaling: float = 1.0, seed: int = 0, **ranks):
        base = tiny_llama(seed, initializer_range=0.3)
        model = tiny_llama(seed, initializer_range=0.3)
        names = resolve_targets(model, patterns)
        inits, _ = build_inits(
            model, names, batches(tiny_tokenizer, SAFETY_ROWS), batches(tiny_tokenizer, TASK_ROWS),
            **{**SMALL_RANKS, **ranks},
        )
        return base, attach(model, inits, scaling), inits

    return make
