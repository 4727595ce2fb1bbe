"""The SafeLoRA alignment operator in factorised form: pure functions over fp32 tensors.

For one module, V = W_aligned − W_base (d_out, d_in) and C = V·Vᵀ/‖V‖_F (d_out, d_out). The official code builds C
(d_out² floats per module, d³ FLOPs) and then the d_out×d_in products C·B·A and B·A to compare them. Nothing here
forms C, C·B·A or B·A:

- C·B = V·(Vᵀ·B)/‖V‖_F costs 2·d_out·d_in·r FLOPs and d·r memory.
- Every Frobenius quantity of the updates reduces to r×r Gram matrices: for X, Y of shape (d_out, r),
  ⟨X·A, Y·A⟩_F = tr((Xᵀ·Y)·(A·Aᵀ)). So cos(C·B·A, B·A), ‖C·B·A − B·A‖_F and ‖B·A‖_F cost O(d·r²).

The r×r traces are accumulated in float64 (they are free); the big products stay fp32. C does not depend on the sign
of V, and neither does anything below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def project_b(v: torch.Tensor, b: torch.Tensor, v_norm: float | None = None) -> torch.Tensor:
    """C·B without forming C. v: (d_out, d_in), b: (d_out, r) -> (d_out, r)."""
    v, b = v.float(), b.float()
    norm = float(torch.linalg.matrix_norm(v)) if v_norm is None else v_norm
    g = (b.T @ v).T  # (d_in, r); Bᵀ·V streams V row-major, several times faster than Vᵀ·B on CPU BLAS
    return (v @ g) / norm  # (d_out, r)


def lowrank_inners(factors: list[torch.Tensor], a: torch.Tensor) -> torch.Tensor:
    """All ⟨X_i·A, X_j·A⟩_F for X_i: (d_out, r) and A: (r, d_in), from one (k·r)×(k·r) Gram -> (k, k) float64.

    ⟨X·A, Y·A⟩_F = tr((Xᵀ·Y)·(A·Aᵀ)); the Grams are float64 (d·r² FLOPs, negligible) so norms of differences
    stay accurate even when the two updates nearly coincide.
    """
    k, r = len(factors), a.shape[0]
    a64 = a.double()
    a_gram = a64 @ a64.T  # (r, r)
    x = torch.cat(factors, dim=1).double()  # (d_out, k·r)
    gram = (x.T @ x).reshape(k, r, k, r)
    return torch.einsum("iajb,ab->ij", gram, a_gram)  # tr(G_ij·AAᵀ) = Σ G_ij ⊙ AAᵀ (AAᵀ is symmetric)


@dataclass
class ModuleGeometry:
    """What both repair methods need to know about one module, from its low-rank factors."""

    cb: torch.Tensor
    """C·B_orig, fp32 (d_out, r): SafeLoRA's projected B."""
    v_norm: float
    """‖V‖_F; 0 when the aligned and base weights are identical (C is then undefined)."""
    cosine: float | None
    """cos(vec(C·B·A), vec(B·A)); None when B·A = 0 or V = 0."""
    update_norm: float
    """‖B·A‖_F (unscaled)."""
    residual_norm: float
    """‖C·B·A − B·A‖_F (unscaled): how far the update lies from its image under C."""


def module_geometry(v: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> ModuleGeometry:
    """Project and score one module. v: (d_out, d_in), b: (d_out, r), a: (r, d_in); all upcast to fp32."""
    v, b, a = v.float(), b.float(), a.float()
    v_norm = float(torch.linalg.matrix_norm(v))
    if v_norm == 0.0:
        update_sq = float(lowrank_inners([b], a)[0, 0])
        return ModuleGeometry(torch.zeros_like(b), 0.0, None, max(update_sq, 0.0) ** 0.5, float("nan"))
    cb = project_b(v, b, v_norm)  # (d_out, r)
    # Rows/cols: B, C·B, C·B − B (the difference taken directly, so the residual does not suffer cancellation).
    inner = lowrank_inners([b, cb, cb - b], a).tolist()
    update_sq, projected_sq, residual_sq = (max(inner[i][i], 0.0) for i in range(3))
    cosine = _cosine(inner[1][0], projected_sq, update_sq)
    return ModuleGeometry(cb, v_norm, cosine, update_sq**0.5, residual_sq**0.5)


def _cosine(cross: float, projected_sq: float, update_sq: float) -> float | None:
    if update_sq == 0.0:
        return None  # no update: nothing to compare
    if projected_sq == 0.0:
        return 0.0  # C annihilates the update: as misaligned as it gets
    return max(-1.0, min(1.0, cross / (projected_sq * update_sq) ** 0.5))
