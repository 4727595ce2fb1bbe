"""Truncated SVD of one weight delta, P_k(V) = U_k·Σ_k·V_kᵀ, exact or randomized; pure functions over fp32 tensors.

LoX extrapolates along P_k(W_aligned − W_base) and RESTA's LoRA output stores its safety vector as P_k. The exact
SVD of a 4096×4096 matrix costs tens of seconds on a CPU; the randomized range finder (Halko, Martinsson & Tropp
2011; 10 oversamples, 2 QR-stabilised power iterations by default) costs O(d_out·d_in·(k+p)·(2·iters+2)) and is
what `svd="auto"` uses above 1024. The residual ‖V − P_k‖_F/‖V‖_F is measured, so its accuracy is on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from safepeft.errors import ConfigError

SvdMethod = Literal["auto", "exact", "randomized"]
EXACT_UP_TO = 1024
"""`auto` takes the exact SVD when min(d_out, d_in) is at most this."""
RANK_TOL = 1e-4
"""σ_k below RANK_TOL·σ_1 means V has rank < k: the k-th direction would be rounding noise (fp32 differences of
bf16/fp32 checkpoints sit far below it, real alignment directions far above it)."""


@dataclass
class TruncatedSvd:
    """The top-k factors of one matrix and how much of it they hold."""

    left: torch.Tensor
    """U_k·Σ_k, fp32 (d_out, k)."""
    right: torch.Tensor
    """V_kᵀ, fp32 (k, d_in): P_k = left @ right."""
    singular_values: torch.Tensor
    """σ_1 ≥ … ≥ σ_k (fp32, k)."""
    relative_error: float
    """‖V − P_k‖_F / ‖V‖_F (0 when V = 0)."""


def truncated_svd(v: torch.Tensor, k: int, method: SvdMethod = "auto", oversample: int = 10, iters: int = 2,
                  seed: int = 0, name: str = "the matrix") -> TruncatedSvd:
    """Top-k SVD of v (d_out, d_in). Raises when k exceeds min(d_out, d_in) or the numerical rank of v."""
    v = v.float()
    d_out, d_in = v.shape
    if k < 1 or k > min(d_out, d_in):
        raise ConfigError(f"k={k} is larger than the rank bound min{tuple(v.shape)}={min(d_out, d_in)} of {name}.",
                          f"Pass --k between 1 and {min(d_out, d_in)}.")
    exact = method == "exact" or (method == "auto" and min(d_out, d_in) <= EXACT_UP_TO)
    if exact or k + oversample >= min(d_out, d_in):
        u, s, vh = torch.linalg.svd(v, full_matrices=False)
        u, s, vh = u[:, :k], s[:k], vh[:k]
    else:
        u, s, vh = _randomized(v, k, oversample, iters, seed)
    from safepeft.repair.model_io import frobenius_sq

    total_sq = frobenius_sq(v)
    if total_sq == 0.0:
        return TruncatedSvd(u * s, vh, s, 0.0)
    if float(s[-1]) <= RANK_TOL * float(s[0]):
        numerical = int((s > RANK_TOL * s[0]).sum())
        raise ConfigError(f"k={k} is larger than the rank of {name} (numerical rank {numerical}: "
                          f"σ_{k}/σ_1 = {float(s[-1] / s[0]):.2e}).",
                          f"Pass --k {numerical} or less; directions beyond the rank are numerical noise.")
    left = u * s  # (d_out, k)
    # Measured directly: ‖V‖² − Σσᵢ² would cancel catastrophically in fp32 when P_k holds nearly all of V.
    error = frobenius_sq(v, left=left, right=vh) ** 0.5 / total_sq**0.5
    return TruncatedSvd(left, vh, s, error)


def _randomized(v: torch.Tensor, k: int, oversample: int, iters: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Randomized range finder with QR-stabilised power iterations; deterministic for a given seed."""
    gen = torch.Generator().manual_seed(seed)
    # drawn on the CPU generator whatever v's device, so a seed gives the same sketch everywhere
    omega = torch.randn(v.shape[1], k + oversample, generator=gen).to(v.device)  # (d_in, k+p)
    q, _ = torch.linalg.qr(v @ omega)  # (d_out, k+p)
    for _ in range(iters):
        z, _ = torch.linalg.qr(v.T @ q)  # (d_in, k+p)
        q, _ = torch.linalg.qr(v @ z)
    small = q.T @ v  # (k+p, d_in)
    u_small, s, vh = torch.linalg.svd(small, full_matrices=False)
    return (q @ u_small[:, :k]), s[:k], vh[:k]
