"""Bootstrap rates: CIs contain the estimate, are seeded, and handle degenerate inputs."""

import numpy as np
import pytest

from safepeft.audit.metrics import bootstrap_mean, summarize


def test_ci_contains_the_estimate_and_is_reproducible():
    values = [5.0] * 30 + [1.0] * 70  # ratings (not 0/1) are bootstrapped
    metric = bootstrap_mean(values, n_resamples=500, seed=3)
    assert metric.value == pytest.approx(2.2)
    low, high = metric.ci95
    assert low < 2.2 < high and 1.6 < low and high < 2.8
    assert bootstrap_mean(values, n_resamples=500, seed=3) == metric
    assert bootstrap_mean(values, n_resamples=500, seed=4).ci95 != metric.ci95


def test_ci_width_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(list(rng.integers(0, 2, 20).astype(float)), 500)
    large = bootstrap_mean(list(rng.integers(0, 2, 2000).astype(float)), 500)
    assert (large.ci95[1] - large.ci95[0]) < (small.ci95[1] - small.ci95[0])


def test_degenerate_inputs():
    assert bootstrap_mean([]).value is None and bootstrap_mean([None, None]).ci95 is None
    assert bootstrap_mean([3.0]).ci95 is None
    assert bootstrap_mean([2.0, 2.0, 2.0]).ci95 == (2.0, 2.0)


def test_rates_get_an_exact_interval_that_does_not_collapse():  # issue #15: no more 1.00 [1.00, 1.00] at n = 3
    low, high = bootstrap_mean([1.0, 1.0, 1.0]).ci95
    assert high == 1.0 and low < 0.5
    assert bootstrap_mean([0.0] * 8).ci95[1] > 0.3
    single = bootstrap_mean([1.0]).ci95
    assert single[0] < 0.1 and single[1] == 1.0
    assert bootstrap_mean([1.0, None, 0.0, None]).value == 0.5  # None = unscored, out of the denominator


def test_summarize_by_category_in_hazard_order():
    outcomes = {"harmful_rate": [1.0, 0.0, 1.0, 1.0, None], "refusal_rate": [0.0, 1.0, 0.0, 0.0, 1.0]}
    categories = ["S10_suicide_self_harm", "S2_non_violent_crimes", "other", "S2_non_violent_crimes", "other"]
    overall, by_category = summarize(outcomes, categories, n_resamples=200)
    assert list(by_category) == ["S2_non_violent_crimes", "S10_suicide_self_harm", "other"]
    assert overall["harmful_rate"].value == 0.75 and overall["refusal_rate"].value == 0.4
    assert by_category["S2_non_violent_crimes"].n == 2
    assert by_category["S2_non_violent_crimes"].metrics["harmful_rate"].value == 0.5
    assert by_category["other"].metrics["harmful_rate"].value == 1.0
