"""Which linear layers SaLoRA adapts: PEFT-style name matching, resolved to full module names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safepeft.errors import ConfigError


def resolve_targets(model: Any, patterns: Sequence[str]) -> list[str]:
    """Full names of the ``nn.Linear`` modules whose name equals a pattern or ends with ``.pattern`` (as PEFT);
    ``all-linear`` selects every linear layer.

    The output projection (lm_head) is never a target: SaLoRA adapts projections inside the blocks.
    """
    from torch import nn  # here, not at import: the CLI reads SaLoRA's spec at start-up without torch

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    linear = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and m is not output}
    if "all-linear" in patterns:
        return list(linear)
    names = [n for n in linear if any(n == p or n.endswith("." + p) for p in patterns)]
    if names:
        return names
    matched_other = [n for n, m in model.named_modules() if any(n.endswith("." + p) for p in patterns)]
    suffixes = sorted({n.rpartition(".")[2] for n in linear})
    if matched_other:
        raise ConfigError(
            f"SaLoRA target modules {list(patterns)} match only non-Linear modules (e.g. {matched_other[0]}).",
            f"SaLoRA adapts torch.nn.Linear layers; linear layers of this model: {', '.join(suffixes)}.",
        )
    raise ConfigError(
        f"No linear layer of the model matches SaLoRA target modules {list(patterns)}.",
        f"Pass --set target_modules=... with names of this model's linear layers: {', '.join(suffixes)}.",
    )
