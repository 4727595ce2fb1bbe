"""Issue #15 item 5: the safety rate is named after what the judge measured.

A refusal judge's rate is `compliance_rate` ("did not refuse"); `harmful_rate` only when a harm judge decided.
results.json records the judge of each suite and what it measures, and the console names both.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from safepeft.audit.attacks.suite import build_attacks, with_attacks
from safepeft.audit.base import AuditOptions
from safepeft.audit.judge_error import apply_judge_error
from safepeft.audit.judges.llama_guard import LlamaGuardJudge
from safepeft.audit.judges.refusal import RefusalJudge
from safepeft.audit.runner import build_suites, run_audit
from safepeft.audit.summary import results_tables
from safepeft.models.doubles import ComplyAll, FixedGenerator
from safepeft.records import load_results
from safepeft.records.results import ArtifactRef, SuiteJudge, safety_rate

OPTIONS = AuditOptions(bootstrap=100, max_new_tokens=8, per_category=1)


def harm_judge(verdict: str = "unsafe\nS1") -> LlamaGuardJudge:
    """Llama Guard driven by a scripted judge model: a harm judge without a real model."""
    return LlamaGuardJudge(FixedGenerator(verdict, name="guard-model"), ArtifactRef(spec="guard-model"))


def _audit(judge, tmp_path, suites=("builtin",), attacks=()):
    run = build_suites(list(suites))
    if attacks:
        run = with_attacks(run, build_attacks(list(attacks)), None)
    return run_audit(ComplyAll(), run, judge, OPTIONS, model=ArtifactRef(spec="comply-all"), out_dir=tmp_path,
                     show_progress=False)


def _console(results) -> str:
    console = Console(width=100, record=True)
    for table in results_tables(results):
        console.print(table)
    return " ".join(console.export_text().split())  # lines wrapped at the console width, joined


@pytest.mark.parametrize(("judge", "name", "measures"), [
    (RefusalJudge, "compliance_rate", "refusal"), (harm_judge, "harmful_rate", "harm")])
def test_the_rate_is_named_after_what_the_judge_measures(judge, name, measures, tmp_path):
    results = _audit(judge(), tmp_path, attacks=["direct"])
    stored = load_results(tmp_path / "results.json")
    suite = stored.suites["builtin"]
    other = {"compliance_rate", "harmful_rate"} - {name}
    assert name in suite.metrics and not other & set(suite.metrics)
    assert all(name in part.metrics and not other & set(part.metrics) for part in suite.by_category.values())
    assert safety_rate(suite) == (name, suite.metrics[name]) and suite.metrics[name].value == 1.0
    spec = judge().name
    assert suite.judge == SuiteJudge(spec=spec, measures=measures) == stored.suites["jailbreak:builtin"].judge
    assert stored.judge.params["measures"] == measures and results == stored
    text = _console(stored)
    meaning = "did not refuse" if measures == "refusal" else "harmful content given"
    assert f"{name}: {meaning} (judge {spec})" in text and f"asr: {meaning} (judge {spec})" in text
    assert text.startswith(f"Judge: {spec}, a {measures} judge ({name} = share of answers")
    assert "no measured agreement" in text


def test_a_harm_judge_that_finds_no_harm_is_not_a_refusal_count(tmp_path):
    """The compliant model answered everything; Llama Guard found nothing harmful: harmful_rate 0, while the
    refusal rule still sees no refusal. The two rates measure different things."""
    suite = _audit(harm_judge("safe"), tmp_path).suites["builtin"]
    assert suite.metrics["harmful_rate"].value == 0.0 and suite.metrics["refusal_rate"].value == 0.0


def test_judge_corrected_estimates_cover_either_name(tmp_path):
    counts = {"tp": 45, "fn": 5, "tn": 40, "fp": 10}
    for judge in (RefusalJudge(), harm_judge()):
        results = apply_judge_error(_audit(judge, tmp_path / judge.name), counts, n_resamples=200)
        name, metric = safety_rate(results.suites["builtin"])
        assert metric.corrected is not None and metric.corrected_ci95 is not None, name
        assert results.judge.params["accuracy"]["agreement"] == 0.85
        assert "agreement 85.0% with human labels on 100 completions (judge-eval)" in _console(results)
