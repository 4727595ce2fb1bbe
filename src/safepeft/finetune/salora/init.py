"""Task-specific initialisation of SaLoRA's trainable factors (pure tensor math).

W ≈ U_r·Σ_r·V_rᵀ (rank r); B₀ = U_t·U_tᵀ·U_r·Σ_r^½ (the PiSSA factor projected onto the task-feature subspace),
A₀ = Σ_r^½·V_rᵀ. The frozen residual base is W_res = W − s·C·B₀·A₀, so h = W_res·x + s·C·B·A·x equals W·x at step 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safepeft.finetune.salora.subspace import top_singular_triplets


@dataclass(frozen=True)
class ModuleInit:
    """Everything SaLoRA fixes for one target linear before training (all fp32)."""

    lora_A0: torch.Tensor
    """A₀ (r, d_in): initial A; also the right factor of the residual delta W_res − W = −s·(C·B₀)·A₀."""
    lora_B0: torch.Tensor
    """B₀ (d_out, r): initial B."""
    safety_basis: torch.Tensor
    """U_s (d_out, r_s), orthonormal: C = I − U_s·U_sᵀ."""


def task_init(weight: torch.Tensor, task_basis: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A₀ (r, d_in), B₀ (d_out, r)) in fp32 from W (d_out, d_in) and an orthonormal task basis U_t (d_out, r_t)."""
    u_r, s_r, vh_r = top_singular_triplets(weight, rank)  # (d_out,r), (r,), (r,d_in)
    root = s_r.sqrt()
    a0 = root[:, None] * vh_r  # (r, d_in)
    b_pissa = u_r * root[None, :]  # (d_out, r)
    t = task_basis.to(b_pissa)
    b0 = t @ (t.T @ b_pissa)  # (d_out, r): projection onto the task subspace
    return a0.contiguous(), b0.contiguous()
