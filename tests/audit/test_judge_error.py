"""Rogan–Gladen correction of judged rates and its bootstrap interval (judge error + audit items)."""

from __future__ import annotations

import pytest

from safepeft.audit.judge_error import apply_judge_error, corrected_rate, rogan_gladen, sens_spec
from safepeft.records.results import ArtifactRef, AuditResults, CategoryResult, Metric, SuiteResult


def test_rogan_gladen_is_exact_on_constructed_counts():
    # 200 items, true harmful share 0.30 (60 harmful, 140 not); a judge with sensitivity 0.9 and specificity 0.8
    # calls 0.9 * 60 + 0.2 * 140 = 54 + 28 = 82 harmful: observed 0.41. The correction must give back 0.30.
    counts = {"tp": 90, "fn": 10, "tn": 160, "fp": 40}  # sensitivity 0.9, specificity 0.8
    sensitivity, specificity = sens_spec(counts)
    assert (sensitivity, specificity) == (0.9, 0.8)
    assert rogan_gladen(82 / 200, sensitivity, specificity) == pytest.approx(0.30, abs=1e-12)
    # Clipped to [0, 1] when sampling noise pushes the estimate outside.
    assert rogan_gladen(0.05, 0.9, 0.8) == 0.0 and rogan_gladen(0.99, 0.9, 0.95) == 1.0
    # A perfect judge changes nothing; a judge no better than chance is not inverted.
    assert rogan_gladen(0.37, 1.0, 1.0) == pytest.approx(0.37)
    assert rogan_gladen(0.37, 0.5, 0.5) == pytest.approx(0.37)


def test_refusal_rates_use_the_swapped_roles():
    counts = {"tp": 90, "fn": 10, "tn": 160, "fp": 40}
    # Refusal detection: sensitivity = 0.8 (refusals called refusals), specificity = 0.9.
    # True refusal share 0.5 -> observed 0.8 * 0.5 + 0.1 * 0.5 = 0.45.
    metric = corrected_rate(0.45, 400, counts, refused=True, n_resamples=500)
    assert metric.value == pytest.approx(0.5)


def test_interval_includes_judge_uncertainty():
    precise = {"tp": 90_000, "fn": 10_000, "tn": 160_000, "fp": 40_000}
    rough = {"tp": 9, "fn": 1, "tn": 16, "fp": 4}  # same rates, 10 000x fewer validation rows
    tight = corrected_rate(0.41, 200, precise, n_resamples=4000, seed=1)
    wide = corrected_rate(0.41, 200, rough, n_resamples=4000, seed=1)
    assert tight.value == pytest.approx(wide.value) == pytest.approx(0.30)
    for metric in (tight, wide):
        low, high = metric.ci95
        assert low <= metric.value <= high
    assert (wide.ci95[1] - wide.ci95[0]) > 1.5 * (tight.ci95[1] - tight.ci95[0])
    # Reproducible for a seed.
    assert corrected_rate(0.41, 200, rough, n_resamples=4000, seed=1) == wide


def test_apply_fills_every_harmful_refusal_and_asr_rate_only():
    suite = SuiteResult(kind="safety", n=100, metrics={
        "harmful_rate": Metric(value=0.41), "refusal_rate": Metric(value=0.5), "partial_rate": Metric(value=0.1)},
        by_category={"S1": CategoryResult(n=50, metrics={"harmful_rate": Metric(value=0.41)})},
        params={"n_unscored": 0})
    attack = SuiteResult(kind="jailbreak", n=40, metrics={"asr": Metric(value=0.41)},
                         by_attack={"base64": CategoryResult(n=40, metrics={"asr": Metric(value=0.41)})})
    results = AuditResults(model=ArtifactRef(spec="m"), judge=ArtifactRef(spec="classifier"),
                           suites={"builtin": suite, "jailbreak:builtin": attack})
    apply_judge_error(results, {"tp": 90, "fn": 10, "tn": 160, "fp": 40}, n_resamples=300)
    assert suite.metrics["harmful_rate"].corrected == pytest.approx(0.30)
    assert suite.metrics["harmful_rate"].corrected_ci95 is not None
    assert suite.metrics["refusal_rate"].corrected is not None
    assert suite.metrics["partial_rate"].corrected is None  # not a rate of the judge's two labels
    assert suite.by_category["S1"].metrics["harmful_rate"].corrected == pytest.approx(0.30)
    assert attack.metrics["asr"].corrected == pytest.approx(0.30)
    assert attack.by_attack["base64"].metrics["asr"].corrected == pytest.approx(0.30)
    assert results.judge.params["accuracy"]["sensitivity"] == 0.9
    # A judge without measured error rates leaves everything as it was.
    untouched = AuditResults(model=ArtifactRef(spec="m"), suites={"s": SuiteResult(
        kind="safety", n=10, metrics={"harmful_rate": Metric(value=0.2)})})
    apply_judge_error(untouched, None)
    assert untouched.suites["s"].metrics["harmful_rate"].corrected is None
