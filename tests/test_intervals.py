"""Issue #15: small-sample intervals cover at their nominal level and never collapse (simulated, numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from safepeft.intervals import clopper_pearson, paired_proportion_difference, too_small

SEEDS = 400


@pytest.mark.parametrize("n", [3, 10, 30])
@pytest.mark.parametrize("p", [0.05, 0.5, 1.0])
def test_proportion_coverage(n, p):
    k = np.random.default_rng(n * 100 + int(p * 100)).binomial(n, p, size=SEEDS)
    table = {j: clopper_pearson(j, n) for j in range(n + 1)}
    covered = np.mean([table[j][0] <= p <= table[j][1] for j in k])
    assert covered >= 0.93


def test_proportion_never_collapses():
    low, high = clopper_pearson(3, 3)
    assert high == 1.0 and low < 0.5  # not 1.00 [1.00, 1.00]
    assert clopper_pearson(0, 8)[1] > 0.3


@pytest.mark.parametrize("n", [8, 30])
@pytest.mark.parametrize("p1, p2, rho", [(0.5, 0.5, 0.8), (0.9, 0.6, 0.5), (0.05, 0.05, 0.0), (1.0, 1.0, 0.0)])
def test_paired_difference_coverage(n, p1, p2, rho):
    rng = np.random.default_rng(n + int(100 * p1) + int(10 * p2))
    covered = []
    for _ in range(SEEDS):
        x = rng.random(n) < p1
        # y copies x with probability rho, else is drawn on its own; the marginal of y is mixed accordingly.
        copy = rng.random(n) < rho
        y = np.where(copy, x, rng.random(n) < p2)
        truth = p1 - (rho * p1 + (1 - rho) * p2)
        a, b = int(np.sum(x & y)), int(np.sum(x & ~y))
        c, d = int(np.sum(~x & y)), int(np.sum(~x & ~y))
        _, (low, high) = paired_proportion_difference(a, b, c, d)
        covered.append(low - 1e-12 <= truth <= high + 1e-12)
    assert np.mean(covered) >= 0.93


def test_paired_difference_does_not_collapse_when_nothing_changed():
    for a, d in [(8, 0), (0, 8), (4, 4)]:
        diff, (low, high) = paired_proportion_difference(a, 0, 0, d)
        assert diff == 0.0 and low < -0.1 and high > 0.1


def test_small_sample_rule():
    assert too_small(8, (-0.1, 0.1)) and not too_small(200, (-0.1, 0.1)) and too_small(200, (-0.3, 0.3))
