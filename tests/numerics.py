"""Float tolerances derived from the arithmetic, never fitted to one CPU's rounding.

Two fp32 evaluations of the same network that differ only in how they round (W + BA merged vs W and BA applied
apart, another summation order, AVX2 vs AVX-512 kernels) drift apart by an amount set by the arithmetic: every
dot product of length n carries a rounding error of about sqrt(n)·eps relative to its operands (the random-walk
estimate; the worst case is n·eps), and each layer adds its own. A fixed atol such as 1e-5 ignores both the width
and the output's scale, so it passes on one machine and fails by rounding on the next.
"""

from __future__ import annotations

import math

import torch

EPS32 = float(torch.finfo(torch.float32).eps)


def fp32_atol(reference: torch.Tensor, width: int, depth: int, margin: float = 16.0) -> float:
    """Absolute tolerance for comparing two fp32 computations of ``reference`` (e.g. logits): ``depth`` layers of
    dot products of length up to ``width``, scaled by the largest output. ``margin`` covers the constants the
    estimate leaves out; it stays orders of magnitude below any real (non-rounding) difference."""
    return margin * depth * math.sqrt(width) * EPS32 * float(reference.detach().abs().max())


def model_atol(reference: torch.Tensor, config) -> float:
    """fp32_atol for a transformers causal LM: depth = its layers + the head, width = its widest projection."""
    width = max(config.hidden_size, getattr(config, "intermediate_size", config.hidden_size), config.vocab_size)
    return fp32_atol(reference, width, config.num_hidden_layers + 1)
