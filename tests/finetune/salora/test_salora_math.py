"""Pure SaLoRA math on random tensors: subspaces from Grams, C applied without materialising it, task init."""

import pytest
import torch

from safepeft.finetune.salora.init import task_init
from safepeft.finetune.salora.subspace import project_out, top_output_directions


def _projector(basis):
    return basis @ basis.T


@pytest.mark.parametrize("d_out,d_in", [(9, 13), (13, 9)], ids=["d_out<d_in", "d_out>d_in"])
def test_subspace_from_gram_equals_svd_of_features(d_out, d_in):
    torch.manual_seed(0)
    weight = torch.randn(d_out, d_in)
    # features with a clear spectral gap so the top-3 subspace is well defined
    x = torch.randn(200, d_in) @ torch.diag(torch.linspace(3.0, 0.1, d_in))
    features = (x @ weight.T).double()  # F = X·Wᵀ (N, d_out)
    expected = torch.linalg.svd(features, full_matrices=False).Vh[:3].T.float()  # top right singular vectors
    basis = top_output_directions(weight, x.T @ x, rank=3)
    assert basis.shape == (d_out, 3)
    torch.testing.assert_close(basis.T @ basis, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(_projector(basis), _projector(expected), atol=1e-4, rtol=0)


def test_rank_deficient_gram_still_gives_orthonormal_basis():
    torch.manual_seed(1)
    weight = torch.randn(13, 9)
    x = torch.randn(2, 9)  # only 2 tokens: G has rank 2 < requested 5
    basis = top_output_directions(weight, x.T @ x, rank=5)
    torch.testing.assert_close(basis.T @ basis, torch.eye(5), atol=1e-5, rtol=0)
    features = x @ weight.T  # both feature rows lie inside the basis span
    torch.testing.assert_close(features @ _projector(basis), features, atol=1e-4, rtol=1e-4)


def test_project_out_is_the_complement_projector():
    torch.manual_seed(2)
    basis = torch.linalg.qr(torch.randn(11, 4)).Q
    m = torch.randn(11, 7)
    cm = project_out(m, basis)
    torch.testing.assert_close(cm, (torch.eye(11) - basis @ basis.T) @ m, atol=1e-5, rtol=0)
    torch.testing.assert_close(basis.T @ cm, torch.zeros(4, 7), atol=1e-5, rtol=0)  # U_sᵀ·C = 0
    torch.testing.assert_close(project_out(cm, basis), cm, atol=1e-5, rtol=0)  # idempotent


def test_task_init_is_pissa_projected_on_the_task_subspace():
    torch.manual_seed(3)
    weight = torch.randn(10, 14)
    a0, b0 = task_init(weight, torch.eye(10), rank=3)  # full task subspace: plain PiSSA
    u, s, vh = torch.linalg.svd(weight)
    torch.testing.assert_close(b0 @ a0, u[:, :3] @ torch.diag(s[:3]) @ vh[:3], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b0.T @ b0, torch.diag(s[:3]), atol=1e-4, rtol=1e-4)  # B₀ = U_r·Σ_r^½
    task = torch.linalg.qr(torch.randn(10, 4)).Q
    a0, b0 = task_init(weight, task, rank=3)
    assert a0.shape == (3, 14) and b0.shape == (10, 3)
    torch.testing.assert_close(task @ (task.T @ b0), b0, atol=1e-5, rtol=0)  # columns of B₀ lie in span(U_t)
    torch.testing.assert_close(b0, task @ task.T @ u[:, :3] @ torch.diag(s[:3].sqrt()), atol=1e-4, rtol=1e-4)
