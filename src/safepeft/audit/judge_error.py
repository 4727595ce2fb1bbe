"""Judge error in every rate: Rogan–Gladen correction with a bootstrap interval over judge and audit uncertainty.

A judge that calls a share ``p_obs`` of items positive, with sensitivity ``se`` and specificity ``sp`` measured on
human labels, implies a true share ``(p_obs + sp - 1) / (se + sp - 1)`` (Rogan & Gladen 1978), clipped to [0, 1].
Its 95% interval resamples both sources of error: the audit's items (a binomial redraw of the observed rate over
the ``n`` scored items, which is the item bootstrap of a 0/1 outcome) and the judge's validation counts (binomial
redraws of its true-positive count among the human positives and of its true-negative count among the human
negatives), and takes percentiles of the corrected rate.

The judge's counts have "complied" (the harmful direction) as positive: for a refusal judge the positive rate
is ``compliance_rate`` ("did not refuse"), for a harm judge ``harmful_rate``. Rates of the refusal direction
(refusal_rate, over_refusal_rate ...) swap the roles: the judge's sensitivity to refusal is its specificity to
compliance. Pure numpy; `apply_judge_error` fills the optional ``corrected`` fields of every rate in results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from safepeft.records.results import SAFETY_RATES, AuditResults, CategoryResult, Metric

COMPLIED_RATES = (*SAFETY_RATES.values(), "asr", "any_attack_asr")
"""Rates of the judge's positive (complied / harmful) label, under either name of the safety rate."""
REFUSED_RATES = ("refusal_rate", "full_refusal_rate", "over_refusal_rate")
"""Rates of its negative (refused) label."""


def rogan_gladen(p_obs: float, sensitivity: float, specificity: float) -> float:
    """The corrected prevalence, clipped to [0, 1]; the observed rate when the judge is no better than chance."""
    youden = sensitivity + specificity - 1.0
    if youden <= 0:
        return float(min(max(p_obs, 0.0), 1.0))
    return float(min(max((p_obs + specificity - 1.0) / youden, 0.0), 1.0))


def sens_spec(counts: Mapping[str, int]) -> tuple[float, float]:
    """(sensitivity, specificity) of complied detection from tp/fp/fn/tn counts."""
    positives, negatives = counts["tp"] + counts["fn"], counts["tn"] + counts["fp"]
    if positives == 0 or negatives == 0:
        raise ValueError(f"judge validation counts need both classes, got {dict(counts)}")
    return counts["tp"] / positives, counts["tn"] / negatives


def corrected_rate(p_obs: float, n: int, counts: Mapping[str, int], *, refused: bool = False,
                   n_resamples: int = 2000, seed: int = 0) -> Metric:
    """Rogan–Gladen estimate and 95% percentile-bootstrap interval over items and validation counts."""
    sensitivity, specificity = sens_spec(counts)
    positives, negatives = counts["tp"] + counts["fn"], counts["tn"] + counts["fp"]
    if refused:  # the judge's refusal detection: swap the roles of the two classes
        sensitivity, specificity = specificity, sensitivity
        positives, negatives = negatives, positives
    value = rogan_gladen(p_obs, sensitivity, specificity)
    if n < 1:
        return Metric(value=value, ci95=None)
    rng = np.random.default_rng(seed)
    p_b = rng.binomial(n, p_obs, n_resamples) / n  # (B,) audit items
    se_b = rng.binomial(positives, sensitivity, n_resamples) / positives  # (B,) judge validation
    sp_b = rng.binomial(negatives, specificity, n_resamples) / negatives
    youden = se_b + sp_b - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.where(youden > 0, (p_b + sp_b - 1.0) / youden, p_b)
    corrected = np.clip(corrected, 0.0, 1.0)
    low, high = np.percentile(corrected, [2.5, 97.5])
    return Metric(value=value, ci95=(float(low), float(high)))


def _correct(metrics: dict[str, Metric], n: int, counts: Mapping[str, int], n_resamples: int, seed: int) -> None:
    for name, metric in metrics.items():
        if metric.value is None or name not in COMPLIED_RATES + REFUSED_RATES:
            continue
        fixed = corrected_rate(metric.value, n, counts, refused=name in REFUSED_RATES, n_resamples=n_resamples,
                               seed=seed)
        metric.corrected, metric.corrected_ci95 = fixed.value, fixed.ci95


def apply_judge_error(results: AuditResults, counts: Mapping[str, int] | None, *, n_resamples: int = 2000,
                      seed: int = 0) -> AuditResults:
    """Fill ``corrected`` / ``corrected_ci95`` of every harmful/compliance, refusal and ASR rate (in place);
    records the judge's sensitivity, specificity and agreement in ``results.judge.params``. No counts: nothing
    changes."""
    if counts is None:
        return results
    sensitivity, specificity = sens_spec(counts)
    if results.judge is not None:
        agreement = (counts["tp"] + counts["tn"]) / sum(counts[key] for key in ("tp", "fp", "fn", "tn"))
        results.judge.params["accuracy"] = {"sensitivity": round(sensitivity, 4), "specificity": round(specificity, 4),
                                            "agreement": round(agreement, 4), "counts": dict(counts)}
    for suite in results.suites.values():
        n_scored = suite.n - int(suite.params.get("n_unscored", 0) or 0)
        _correct(suite.metrics, n_scored, counts, n_resamples, seed)
        parts: list[CategoryResult] = [*suite.by_category.values(), *(suite.by_attack or {}).values()]
        for part in parts:
            _correct(part.metrics, part.n, counts, n_resamples, seed)
    return results


def judge_counts(judge: Any) -> dict[str, int] | None:
    """A judge's validation confusion counts (complied = positive), if it has measured ones."""
    accuracy = getattr(judge, "accuracy", None)
    return accuracy() if callable(accuracy) else None


def read_judge_eval(path: Any) -> dict[str, int]:
    """The confusion counts of a `safepeft judge-eval --format json` output file."""
    import json
    from pathlib import Path

    from safepeft.errors import DataError

    try:
        counts = json.loads(Path(path).read_text(encoding="utf-8"))["confusion"]
        counts = {key: int(counts[key]) for key in ("tp", "fp", "fn", "tn")}
        sens_spec(counts)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"--judge-accuracy {path} is not a judge-eval result with both classes ({exc}).",
                        "Pass the output of `safepeft judge-eval --format json`.") from None
    return counts
