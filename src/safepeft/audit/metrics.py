"""Rates and means with seeded percentile-bootstrap 95% CIs, overall and per category.

Outcomes are per-item numbers (1/0 for rates, 1-5 for ratings) or None when the judge could not score an item;
None values are left out of that metric's denominator (their count is reported separately by the suite).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from safepeft.intervals import clopper_pearson
from safepeft.records.results import CategoryResult, Metric


def bootstrap_mean(values: Sequence[float | None], n_resamples: int = 1000, seed: int = 0) -> Metric:
    """Mean of the non-None values with a percentile-bootstrap 95% CI (scipy), reproducible for a seed.

    Rates (every value 0 or 1) get the Clopper–Pearson interval instead (``safepeft.intervals``): it never
    collapses to [p, p] and covers at the nominal level at small n. Otherwise fewer than two values give no
    interval and constant data the degenerate interval [v, v].
    """
    data = np.asarray([v for v in values if v is not None], dtype=np.float64)  # (n,)
    if data.size == 0:
        return Metric(value=None, ci95=None)
    value = float(data.mean())
    if np.all((data == 0.0) | (data == 1.0)):
        return Metric(value=value, ci95=clopper_pearson(int(data.sum()), int(data.size)))
    if data.size < 2:
        return Metric(value=value, ci95=None)
    if np.all(data == data[0]):
        return Metric(value=value, ci95=(value, value))
    from scipy.stats import bootstrap

    generator = np.random.default_rng(seed)
    # scipy >= 1.15 names the generator `rng`; older releases call it `random_state`.
    seeding = {"rng": generator} if "rng" in inspect.signature(bootstrap).parameters else {"random_state": generator}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on near-degenerate resamples; the percentile CI is fine
        result = bootstrap(
            (data,), np.mean, n_resamples=n_resamples, confidence_level=0.95, method="percentile",
            vectorized=True, **seeding,
        )
    low, high = result.confidence_interval
    return Metric(value=value, ci95=(float(low), float(high)))


def summarize(
    outcomes: Mapping[str, Sequence[float | None]],
    categories: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Metric], dict[str, CategoryResult]]:
    """Every metric overall and per category. ``outcomes[name][i]`` belongs to the item in ``categories[i]``."""
    overall = {name: bootstrap_mean(values, n_resamples, seed) for name, values in outcomes.items()}
    by_category: dict[str, CategoryResult] = {}
    for category in sorted(set(categories), key=_category_order):
        members = [i for i, c in enumerate(categories) if c == category]
        metrics = {
            name: bootstrap_mean([values[i] for i in members], n_resamples, seed) for name, values in outcomes.items()
        }
        by_category[category] = CategoryResult(n=len(members), metrics=metrics)
    return overall, by_category


def _category_order(key: str) -> tuple[int, str]:
    """S1 < S2 < ... < S11 < anything else (alphabetical)."""
    head = key.split("_", 1)[0]
    if head.startswith("S") and head[1:].isdigit():
        return int(head[1:]), key
    return 1000, key
