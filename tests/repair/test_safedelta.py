"""Safe Delta: budgeted selection of delta entries (second-order cost) and the OBS compensation vector."""

import pytest
import torch
from menu_helpers import build_family, load_weights, merged_finetuned

from safepeft.errors import ConfigError
from safepeft.repair import repair_adapter
from safepeft.repair.safedelta import safe_delta


def problem(d_out=7, d_in=11, tokens=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, d_in, generator=gen) * torch.linspace(0.2, 3.0, d_in)  # uneven curvature per input
    return torch.randn(d_out, d_in, generator=gen), x.T @ x


def test_unlimited_budget_keeps_the_whole_delta():
    delta, gram = problem()
    result = safe_delta(delta, gram, scale=None)
    assert torch.equal(result.delta, delta) and result.kept_fraction == 1.0


def test_zero_budget_keeps_nothing():
    delta, gram = problem()
    result = safe_delta(delta, gram, scale=0.0)
    assert result.kept_fraction == 0.0 and torch.count_nonzero(result.delta) == 0


def test_selection_fits_the_budget_and_follows_the_curvature_ranking():
    delta, gram = problem()
    hessian = 2 * gram + 0.01 * float((2 * gram).diagonal().mean()) * torch.eye(gram.shape[0])
    h = torch.linalg.inv(hessian.double()).diagonal().float()
    cost = delta.square() / (2 * h)
    previous = 0.0
    for scale in (0.05, 0.2, 0.5):
        result = safe_delta(delta, gram, scale=scale, compensate=False)
        kept = result.delta != 0
        assert float(cost[kept].sum()) <= scale * float(cost.sum()) * (1 + 1e-6)
        full = kept.all(dim=0)
        touched = kept.any(dim=0)
        assert not (touched & ~full).sum() > 1  # at most one partially kept column: where the budget ran out
        if full.any() and (~touched).any():
            assert float(h[full].min()) >= float(h[~touched].max())  # high h (cheap per unit utility) first
        assert result.kept_fraction >= previous
        previous = result.kept_fraction


def test_a_budget_below_one_drops_entries_even_with_strongly_correlated_inputs():
    # Activations of a real model are close to low rank: single-entry OBS costs are then far below the exact loss
    # of the whole delta, and a budget measured against that loss kept everything (the embedded model, scale 0.3).
    gen = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 64, generator=gen)
    x = torch.randn(400, 3, generator=gen) @ basis + 0.01 * torch.randn(400, 64, generator=gen)
    delta = torch.randn(16, 64, generator=gen)
    for scale in (0.05, 0.3):
        result = safe_delta(delta, x.T @ x, scale=scale, compensate=False)
        assert 0.0 < result.kept_fraction < 1.0


def test_compensation_is_the_optimal_adjustment_for_one_kept_entry():
    _, gram = problem()
    delta = torch.zeros(1, gram.shape[0])
    delta[0, 3] = 0.7
    result = safe_delta(delta, gram, scale=10.0, damp=1e-9)  # the single entry is kept; all others are free
    # Exact minimiser of ‖d·Xᵀ‖² with d_3 = 0.7 fixed: solve for the free entries.
    free = [j for j in range(gram.shape[0]) if j != 3]
    g = gram.double()
    solution = -torch.linalg.solve(g[free][:, free], g[free][:, 3] * 0.7)
    expected = torch.zeros(gram.shape[0], dtype=torch.float64)
    expected[3], expected[free] = 0.7, solution
    torch.testing.assert_close(result.delta[0].double(), expected, rtol=1e-3, atol=1e-4)
    assert result.loss_final < result.loss_kept


def test_compensation_lowers_the_safety_loss_of_the_kept_delta():
    delta, gram = problem(seed=3)
    result = safe_delta(delta, gram, scale=0.3)
    assert 0 < result.kept_fraction < 1 and result.loss_final < result.loss_kept


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("safedelta"))


CHATS = [[{"role": "user", "content": f"How do I hurt someone {i}?"},
          {"role": "assistant", "content": "I can't help with that."}] for i in range(4)]


def test_on_a_tiny_model_with_its_own_curvature(family, tmp_path):
    report = repair_adapter("safedelta", base=str(family.base), aligned=str(family.aligned), adapter=family.adapter,
                            out=tmp_path / "out", spec={"scale": 0.01},
                            inputs={"safety_conversations": CHATS}, progress=False)
    assert report.output == "model" and report.summary["curvature"]["tokens"] > 0
    assert all(0 < m.details["kept_fraction"] < 1 for m in report.modules) and len(report.modules) == 4
    assert all(m.details["safety_loss_final"] < m.details["safety_loss_kept"] for m in report.modules)
    written, aligned, ft = load_weights(tmp_path / "out"), load_weights(family.aligned), merged_finetuned(family)
    for name, value in written.items():
        if name.endswith(("q_proj.weight", "v_proj.weight")):
            assert not torch.equal(value, aligned[name]) and not torch.allclose(value, ft[name])
        else:
            assert torch.equal(value, aligned[name])  # Safe Delta only edits the adapted layers

    unlimited = repair_adapter("safedelta", base=str(family.base), aligned=str(family.aligned),
                               adapter=family.adapter, out=tmp_path / "all", spec={"scale": None},
                               inputs={"safety_conversations": CHATS}, progress=False)
    assert all(m.details["kept_fraction"] == 1.0 for m in unlimited.modules)
    for name, value in load_weights(tmp_path / "all").items():
        torch.testing.assert_close(value, ft[name], rtol=0, atol=1e-6)


def test_missing_safety_data_is_refused(family, tmp_path):
    with pytest.raises(ConfigError, match="needs safety conversations"):
        repair_adapter("safedelta", base=str(family.base), aligned=str(family.aligned), adapter=family.adapter,
                       out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
