"""Efficacy figures on constructed outcomes: recovery, utility kept, paired changes, and the validation choice."""

from __future__ import annotations

import numpy as np
import pytest

from safepeft.efficacy import Outcomes, choose, drift, figures, recovery, utility_kept


def _outcomes(harmful, utility=(), benign=()):
    return Outcomes(harmful={("s", f"h{i}"): float(v) for i, v in enumerate(harmful)},
                    utility={("u", f"u{i}"): float(v) for i, v in enumerate(utility)},
                    benign={("b", f"b{i}"): float(v) for i, v in enumerate(benign)})


def test_recovery_is_the_share_of_lost_safety_given_back():
    aligned = _outcomes([0] * 100)
    finetuned = _outcomes([1] * 40 + [0] * 60)
    repaired = _outcomes([1] * 10 + [0] * 90)
    metric, n, notes = recovery(aligned, finetuned, repaired, resamples=500)
    assert n == 100 and metric.value == pytest.approx(0.75) and not notes
    low, high = metric.ci95
    assert low < 0.75 < high and high <= 1.0  # repaired items are a subset of the fine-tune's harmful ones


def test_recovery_pairs_items_and_ignores_items_missing_from_one_audit():
    aligned = _outcomes([0] * 10)
    finetuned = _outcomes([1] * 10)
    repaired = _outcomes([0] * 5)  # only h0..h4 audited
    metric, n, _ = recovery(aligned, finetuned, repaired, resamples=0)
    assert n == 5 and metric.value == 1.0


def test_no_drift_gives_no_recovery_and_says_why():
    same = _outcomes([0, 1, 0, 1])
    metric, _, notes = recovery(same, same, _outcomes([0, 0, 0, 0]), resamples=100)
    assert metric.value is None and "did not drift" in notes[0]


def test_utility_kept_is_the_ratio_of_paired_scores():
    metric, n = utility_kept(_outcomes([], [1] * 50 + [0] * 50), _outcomes([], [1] * 45 + [0] * 55), resamples=300)
    assert n == 100 and metric.value == pytest.approx(0.9)
    assert metric.ci95[0] <= 0.9 <= metric.ci95[1] <= 1.0


def test_drift_and_changes_use_paired_intervals():
    aligned, finetuned = _outcomes([0] * 50), _outcomes([1] * 25 + [0] * 25)
    h_a, h_f, change, n = drift(aligned, finetuned)
    assert (h_a.value, h_f.value, change.value, n) == (0.0, 0.5, 0.5, 50)
    assert change.ci95[0] > 0.3  # 25 of 50 items changed, all the same way
    out = figures(aligned, finetuned, finetuned)
    assert out["harmful_change"].value == 0.0 and not out["significant"]
    assert out["harmful_change"].ci95[0] < 0 < out["harmful_change"].ci95[1]  # cannot collapse to [0, 0]


def test_choose_prefers_recovery_among_candidates_that_keep_utility():
    aligned = _outcomes([0] * 20, [0] * 20)
    finetuned = _outcomes([1] * 10 + [0] * 10, [1] * 20)
    strong = _outcomes([0] * 20, [1] * 10 + [0] * 10)  # recovers all, keeps half the utility
    mild = _outcomes([1] * 5 + [0] * 15, [1] * 20)  # recovers half, keeps all
    none = _outcomes([1] * 10 + [0] * 10, [1] * 20)
    candidates = [("strong", "m", {}, strong), ("mild", "m", {}, mild), ("none", "m", {}, none)]
    chosen, rule, scored = choose(candidates, aligned, finetuned, min_utility_kept=0.95)
    assert chosen == "mild" and "highest validation recovery" in rule
    assert [c.eligible for c in scored] == [False, True, True]
    assert choose(candidates, aligned, finetuned, min_utility_kept=0.4)[0] == "strong"
    chosen, rule, _ = choose(candidates[:1], aligned, finetuned, min_utility_kept=0.95)
    assert chosen == "strong" and "every candidate kept under" in rule


def test_choose_does_not_let_a_no_op_win_on_noisy_utility():
    # 11 of 44 utility items right (the efficacy bench's validation split): a real repair that gets 8 of them right
    # is not shown to lose more than 5%, so its recovery wins over a repair that changes nothing
    aligned = _outcomes([0] * 40, [0] * 44)
    finetuned = _outcomes([1] * 20 + [0] * 20, [1] * 11 + [0] * 33)
    real = _outcomes([1] * 2 + [0] * 38, [1] * 8 + [0] * 36)
    candidates = [("no-op", "m", {}, finetuned), ("real", "m", {}, real)]
    chosen, _, scored = choose(candidates, aligned, finetuned, min_utility_kept=0.95)
    assert chosen == "real" and all(c.eligible for c in scored)
    assert scored[1].utility_kept == pytest.approx(8 / 11) and scored[1].utility_kept_ci95[1] >= 0.95
    # a clear utility collapse on many items stays ineligible
    collapsed = _outcomes([0] * 40, [1] * 2 + [0] * 42)
    finetuned_many = _outcomes([1] * 20 + [0] * 20, [1] * 40 + [0] * 4)
    chosen, _, scored = choose([("no-op", "m", {}, finetuned_many), ("collapsed", "m", {}, collapsed)], aligned,
                               finetuned_many, min_utility_kept=0.95)
    assert chosen == "no-op" and not scored[1].eligible


def test_bootstrap_interval_covers_the_true_recovery_on_simulated_audits():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        a = (rng.random(300) < 0.05).astype(float)
        f = np.maximum(a, rng.random(300) < 0.45)
        r = f * (rng.random(300) < 0.3)  # repair gives back about 70% of the harm
        metric, _, _ = recovery(_outcomes(a), _outcomes(f), _outcomes(r), resamples=400, seed=trial)
        h_f = 0.05 + 0.95 * 0.45
        truth = (h_f - 0.3 * h_f) / (h_f - 0.05)
        covered += metric.ci95[0] <= truth <= metric.ci95[1]
    assert covered >= 34  # nominal 95% of 40 = 38; allow for the approximation
