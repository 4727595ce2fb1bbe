"""Safety/task subspaces: the top right singular vectors of F = X·Wᵀ, computed from the Gram matrix G = XᵀX.

F (N×d_out) is never formed: its right singular vectors are the eigenvectors of FᵀF = W·G·Wᵀ, so calibration only
has to stream G (d_in×d_in) and the SVD becomes a small exact eigenproblem. When d_out > d_in (e.g. up_proj) the
d_out×d_out matrix is avoided too: W·G·Wᵀ = M·Mᵀ with M = W·G^½, whose top left singular vectors come from the
d_in×d_in eigenproblem of MᵀM. The eigenproblems run in float64 (activation Grams of LLMs span many orders of
magnitude; fp32 eigh would blur the 32nd direction of a matrix whose largest eigenvalue is 1e6 times larger).

C = I − U_s·U_sᵀ is only ever applied as ``project_out(M, U_s)`` = M − U_s·(U_sᵀ·M); it is never materialised
(d_out² per layer).
"""

from __future__ import annotations

import torch


def top_output_directions(weight: torch.Tensor, gram: torch.Tensor, rank: int) -> torch.Tensor:
    """Orthonormal basis (d_out, rank) of the top-``rank`` right singular subspace of F = X·Wᵀ, given G = XᵀX.

    Only the spanned subspace matters to SaLoRA (C and U_t·U_tᵀ are projectors); columns come largest first.
    """
    d_out, d_in = weight.shape
    if not 0 < rank <= d_out:
        raise ValueError(f"rank must be in 1..{d_out} (d_out), got {rank}")
    device = _linalg_device(weight.device)
    w = weight.detach().to(device, torch.float64)  # (d_out, d_in)
    g = gram.detach().to(device, torch.float64)  # (d_in, d_in)
    if d_out <= d_in:
        k = w @ g @ w.T  # (d_out, d_out) = FᵀF
        _, vectors = torch.linalg.eigh((k + k.T) / 2)  # ascending eigenvalues
        basis = vectors[:, -rank:].flip(-1)
    else:
        g_values, g_vectors = torch.linalg.eigh((g + g.T) / 2)
        root = g_vectors * g_values.clamp_min(0).sqrt()  # (d_in, d_in), G = root·rootᵀ
        m = w @ root  # (d_out, d_in), M·Mᵀ = FᵀF
        _, z = torch.linalg.eigh(m.T @ m)  # (d_in, d_in)
        # M·z_i = σ_i·u_i; QR normalises and stays orthonormal even where σ_i = 0 (rank-deficient calibration).
        basis = torch.linalg.qr(m @ z[:, -rank:].flip(-1)).Q
    return basis.to(weight.device, torch.float32)


def project_out(matrix: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """C·M for C = I − U·Uᵀ: M (d_out, k) minus its component in span(U) (U: (d_out, r_s)). Costs d_out·k·r_s."""
    return matrix - basis @ (basis.T @ matrix)


def top_singular_triplets(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``rank`` SVD W ≈ U_r·diag(S_r)·V_rᵀ, exact, in fp32: (U_r (d_out,r), S_r (r,), V_rᵀ (r,d_in)).

    The official code uses ``torch.svd_lowrank(q=r)`` with no oversampling, which only approximates the top-r
    triplets; the exact thin SVD costs seconds even for 4096×11008 and keeps ``prepare`` deterministic.
    """
    w = weight.detach().to(_linalg_device(weight.device), torch.float32)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    return u[:, :rank].to(weight.device), s[:rank].to(weight.device), vh[:rank].to(weight.device)


def _linalg_device(device: torch.device) -> torch.device:
    # MPS has neither float64 nor eigh; CPU and CUDA have both.
    return device if device.type in ("cpu", "cuda") else torch.device("cpu")
