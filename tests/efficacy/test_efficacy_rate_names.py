"""The efficacy figures do not depend on the safety rate's name: an audit judged by a refusal judge
(`compliance_rate`) and one judged by a harm judge (`harmful_rate`) with the same per-item verdicts give the same
numbers, and the name travels with them so the report can label them."""

from __future__ import annotations

import numpy as np

from safepeft.efficacy import choose, figures, outcomes, rate_of
from safepeft.records.results import ArtifactRef, AuditResults, Metric, Sample, SuiteJudge, SuiteResult, rate_name


def _audit(harmful: list[int], utility: list[int], measures: str | None) -> AuditResults:
    """An audit with one safety and one utility suite; ``measures`` None is a pre-2 file (harmful_rate, no judge)."""
    name = rate_name(measures or "harm")
    safety = SuiteResult(kind="safety", n=len(harmful), metrics={name: Metric(value=float(np.mean(harmful)))},
                         samples=[Sample(id=f"h{i}", category="S1_violent_crimes", prompt="fixture request",
                                         score=float(v)) for i, v in enumerate(harmful)],
                         judge=None if measures is None else SuiteJudge(spec=f"{measures}-judge", measures=measures))
    util = SuiteResult(kind="utility", n=len(utility), metrics={"exact_match": Metric(value=float(np.mean(utility)))},
                       samples=[Sample(id=f"u{i}", category="arithmetic", prompt="fixture problem", score=float(v))
                                for i, v in enumerate(utility)])
    return AuditResults(model=ArtifactRef(spec="m"), suites={"builtin": safety, "arithmetic": util})


RNG = np.random.default_rng(3)
ALIGNED = (RNG.random(60) < 0.1).astype(int).tolist(), (RNG.random(40) < 0.5).astype(int).tolist()
FINETUNED = (RNG.random(60) < 0.6).astype(int).tolist(), (RNG.random(40) < 0.7).astype(int).tolist()
REPAIRED = (RNG.random(60) < 0.2).astype(int).tolist(), (RNG.random(40) < 0.65).astype(int).tolist()


def _figures(measures):
    measured = [outcomes(_audit(*data, measures)) for data in (ALIGNED, FINETUNED, REPAIRED)]
    return measured, figures(*measured, resamples=300, seed=1)


def test_figures_are_the_same_under_either_name():
    (_, by_refusal), (_, by_harm), (_, old) = _figures("refusal"), _figures("harm"), _figures(None)
    assert by_refusal == by_harm == old
    assert by_refusal["recovery"].value is not None and by_refusal["harmful_rate"].ci95 is not None


def test_the_rate_name_travels_with_the_outcomes():
    refusal, _ = _figures("refusal")
    harm, _ = _figures("harm")
    assert [m.rate for m in refusal] == ["compliance_rate"] * 3 and rate_of(*refusal) == ("compliance_rate", [])
    assert rate_of(*harm) == ("harmful_rate", []) and rate_of() == ("harmful_rate", [])
    name, notes = rate_of(harm[0], refusal[1])
    assert name == "harmful_rate" and "harmful_rate, compliance_rate" in notes[0]


def test_the_validation_choice_is_the_same_under_either_name():
    def chosen(measures):
        aligned, finetuned, repaired = (outcomes(_audit(*d, measures)) for d in (ALIGNED, FINETUNED, REPAIRED))
        return choose([("a", "m", {}, repaired), ("b", "m", {}, finetuned)], aligned, finetuned, 0.9,
                      resamples=300)

    assert chosen("refusal") == chosen("harm")
