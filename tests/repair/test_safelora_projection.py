"""The factorised SafeLoRA operator equals the dense official computation (C formed explicitly)."""

import pytest
import torch

from safepeft.repair.projection import lowrank_inners, module_geometry, project_b

# (d_out, d_in, r): odd sizes, square q/o, GQA k/v (d_out < d_in), MLP up/down (d_out > d_in / d_out < d_in).
SHAPES = [(37, 37, 3), (12, 36, 2), (24, 80, 5), (101, 29, 4), (7, 53, 1), (64, 64, 8)]


def dense_reference(v, b, a):
    """The official computation in float64: C = V·Vᵀ/‖V‖_F, then C·B, C·B·A and B·A as full matrices."""
    v, b, a = v.double(), b.double(), a.double()
    c = v @ v.T / torch.linalg.matrix_norm(v)  # (d_out, d_out)
    cb = c @ b
    projected, update = cb @ a, b @ a  # (d_out, d_in)
    cosine = torch.nn.functional.cosine_similarity(projected.reshape(1, -1), update.reshape(1, -1)).item()
    return cb, cosine, torch.linalg.matrix_norm(projected - update).item(), torch.linalg.matrix_norm(update).item()


def random_case(d_out, d_in, r, seed, v_scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(d_out, d_in, generator=gen) * v_scale
    return v, torch.randn(d_out, r, generator=gen), torch.randn(r, d_in, generator=gen)


@pytest.mark.parametrize("d_out,d_in,r", SHAPES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_factorised_matches_dense(d_out, d_in, r, sign):
    v, b, a = random_case(d_out, d_in, r, seed=d_out * 7 + d_in)
    v = sign * v
    cb_ref, cos_ref, residual_ref, update_ref = dense_reference(v, b, a)
    geometry = module_geometry(v, b, a)
    scale = cb_ref.abs().max().item()
    torch.testing.assert_close(geometry.cb.double() / scale, cb_ref / scale, rtol=0, atol=1e-5)
    assert geometry.cosine == pytest.approx(cos_ref, abs=1e-5)
    assert geometry.residual_norm == pytest.approx(residual_ref, rel=1e-5)
    assert geometry.update_norm == pytest.approx(update_ref, rel=1e-5)


def test_sign_of_v_does_not_matter():
    v, b, a = random_case(19, 31, 3, seed=4)
    plus, minus = module_geometry(v, b, a), module_geometry(-v, b, a)
    torch.testing.assert_close(plus.cb, minus.cb, rtol=1e-6, atol=1e-6)
    assert plus.cosine == pytest.approx(minus.cosine, abs=1e-7)


def test_low_precision_inputs_are_upcast():
    v, b, a = random_case(40, 24, 4, seed=5)
    half = module_geometry(v.bfloat16(), b.bfloat16(), a.bfloat16())
    assert half.cb.dtype == torch.float32
    ref = dense_reference(v.bfloat16().float(), b.bfloat16().float(), a.bfloat16().float())
    assert half.cosine == pytest.approx(ref[1], abs=1e-5)


def test_lowrank_inners_are_the_frobenius_products():
    gen = torch.Generator().manual_seed(1)
    x, y, a = torch.randn(13, 3, generator=gen), torch.randn(13, 3, generator=gen), torch.randn(3, 17, generator=gen)
    inners = lowrank_inners([x, y], a)
    assert inners.shape == (2, 2) and inners.dtype == torch.float64
    assert inners[0, 1].item() == pytest.approx(((x @ a) * (y @ a)).sum().item(), rel=1e-5)
    assert inners[1, 1].item() == pytest.approx(((y @ a) ** 2).sum().item(), rel=1e-5)
    assert inners[0, 1].item() == inners[1, 0].item()


def test_projection_is_not_idempotent_so_a_second_pass_would_change_b():
    """C is not a projector (eigenvalues σ²/‖V‖): applying it twice differs, which is why there is no double pass."""
    v, b, _ = random_case(21, 21, 2, seed=2)
    once = project_b(v, b)
    assert not torch.allclose(project_b(v, once), once, atol=1e-3)


def test_zero_delta_and_zero_update_are_flagged():
    v, b, a = random_case(9, 11, 2, seed=3)
    no_delta = module_geometry(torch.zeros_like(v), b, a)
    assert no_delta.v_norm == 0.0 and no_delta.cosine is None
    no_update = module_geometry(v, torch.zeros_like(b), a)
    assert no_update.cosine is None and no_update.update_norm == 0.0


def test_update_orthogonal_to_v_has_zero_similarity():
    gen = torch.Generator().manual_seed(6)
    u = torch.linalg.qr(torch.randn(15, 15, generator=gen))[0]
    v = u[:, :4] @ torch.randn(4, 10, generator=gen)  # column space = first 4 directions
    b = u[:, 4:7] @ torch.randn(3, 3, generator=gen)  # orthogonal to it
    geometry = module_geometry(v, b, torch.randn(3, 10, generator=gen))
    assert geometry.cosine == pytest.approx(0.0, abs=1e-5)
    assert geometry.residual_norm == pytest.approx(geometry.update_norm, rel=1e-5)
