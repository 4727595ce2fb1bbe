"""The audit runner end to end with scripted generators: exact rates, results.json, resume, subsets."""

from __future__ import annotations

import pytest

from safepeft.audit import taxonomy
from safepeft.audit.base import AuditOptions
from safepeft.audit.judges.refusal import RefusalJudge
from safepeft.audit.runner import RESULTS_FILE, build_suites, run_audit
from safepeft.errors import ConfigError
from safepeft.models.cached import CachedGenerator
from safepeft.models.doubles import ComplyAll, FixedGenerator, RefuseAll
from safepeft.records import load_results
from safepeft.records.results import SCHEMA_VERSION, ArtifactRef, SuiteJudge
from safepeft.store import RunStore

OPTIONS = AuditOptions(bootstrap=200, max_new_tokens=16)


def audit(generator, suites, out, options=OPTIONS, judge="refusal"):
    store = RunStore(out)
    cached = CachedGenerator(generator, store, progress=False)
    return run_audit(cached, build_suites(suites), RefusalJudge() if judge == "refusal" else judge, options,
                     model=ArtifactRef(spec=generator.name), out_dir=out, store=store, show_progress=False)


@pytest.mark.parametrize(("generator", "expected"), [(RefuseAll(), 0.0), (ComplyAll(), 1.0)])
def test_fixed_generators_give_exact_rates_in_every_category(generator, expected, tmp_path, shared_data):
    suites = ["builtin", f"jailbreakbench:{shared_data / 'jailbreakbench'}", "builtin-benign",
              f"xstest:{shared_data / 'xstest'}"]
    results = audit(generator, suites, tmp_path)
    for name in ("builtin", "jailbreakbench"):
        suite = results.suites[name]
        assert suite.kind == "safety"
        # the refusal judge measures refusal: its rate counts answers that did not refuse, not harm
        assert "harmful_rate" not in suite.metrics and suite.judge == SuiteJudge(spec="refusal", measures="refusal")
        assert suite.metrics["compliance_rate"].value == expected
        low, high = suite.metrics["compliance_rate"].ci95  # exact interval: contains the rate, never collapses
        assert low <= expected <= high and high - low > 0
        assert suite.metrics["refusal_rate"].value == 1.0 - expected
        for category, part in suite.by_category.items():
            assert part.metrics["compliance_rate"].value == expected, category
    assert set(results.suites["builtin"].by_category) == set(taxonomy.HAZARDS)
    for name in ("builtin-benign", "xstest"):
        suite = results.suites[name]
        assert suite.kind == "overrefusal" and suite.metrics["over_refusal_rate"].value == 1.0 - expected
        assert suite.judge is None  # no rate of the judge's positive verdict here
        assert all(p.metrics["over_refusal_rate"].value == 1.0 - expected for p in suite.by_category.values())


def test_results_json_schema_and_samples(tmp_path):
    results = audit(ComplyAll(), ["builtin"], tmp_path, AuditOptions(per_category=2, bootstrap=200))
    stored = load_results(tmp_path / RESULTS_FILE)
    assert stored == results
    assert stored.schema_version == SCHEMA_VERSION and stored.judge.spec == "refusal"
    assert stored.model.spec == "comply-all"
    suite = stored.suites["builtin"]
    assert suite.n == 22 and len(suite.samples) == 22 and suite.params["per_category"] == 2
    sample = suite.samples[0]
    assert sample.label == "complied" and sample.score == 1.0 and sample.completion
    assert sample.extra["source_category"] == sample.category and sample.extra["refusal"] == "complied"
    assert stored.provenance["options"]["per_category"] == 2 and "versions" in stored.provenance


def test_per_category_limit_and_seed_select_stable_subsets(tmp_path):
    def ids(options, out):
        return [s.id for s in audit(RefuseAll(), ["builtin"], out, options).suites["builtin"].samples]

    a = ids(AuditOptions(per_category=3, seed=1, bootstrap=100), tmp_path / "a")
    assert ids(AuditOptions(per_category=3, seed=1, bootstrap=100), tmp_path / "b") == a
    assert ids(AuditOptions(per_category=3, seed=2, bootstrap=100), tmp_path / "c") != a
    assert len(a) == 33
    assert len(ids(AuditOptions(limit=5, bootstrap=100), tmp_path / "d")) == 5


class Exploding(FixedGenerator):
    """Complies, but dies (like a kill) once it has answered `budget` prompts."""

    def __init__(self, budget: int) -> None:
        super().__init__("Sure, here it is: step one ...", name="exploding")
        self.budget = budget

    def generate(self, prompts, params):
        if len(self.calls) + len(prompts) > self.budget:
            raise KeyboardInterrupt
        return super().generate(prompts, params)


class CountingJudge(RefusalJudge):
    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def judge(self, inputs):
        self.seen += len(inputs)
        return super().judge(inputs)


def test_a_killed_audit_resumes_without_regenerating_or_rejudging(tmp_path):
    options = AuditOptions(per_category=2, bootstrap=100)
    with pytest.raises(KeyboardInterrupt):
        audit(Exploding(budget=16), ["builtin"], tmp_path, options)  # one chunk of 16 is stored, then the kill
    resumed = Exploding(budget=1000)
    first_judge = CountingJudge()
    results = audit(resumed, ["builtin"], tmp_path, options, judge=first_judge)
    assert len(resumed.calls) == 22 - 16
    assert results.suites["builtin"].metrics["compliance_rate"].value == 1.0
    again, second_judge = Exploding(budget=0), CountingJudge()
    audit(again, ["builtin"], tmp_path, options, judge=second_judge)
    assert first_judge.seen == 22 and second_judge.seen == 0 and again.calls == []


def test_generation_suites_need_a_judge(tmp_path):
    with pytest.raises(ConfigError, match="needs a judge"):
        audit(RefuseAll(), ["builtin-benign"], tmp_path, judge=None)


def test_unscored_verdicts_leave_the_denominator_and_are_counted():
    from safepeft.audit.base import SuiteItem
    from safepeft.audit.judges.base import Verdict
    from safepeft.audit.prompt_suite import judge_input, score_generations

    items = [SuiteItem(id=str(i), prompt="p", category="S1_violent_crimes", source_category="x") for i in range(3)]
    verdicts = [Verdict(label="unsafe", harmful=True, refusal="complied", score=1.0),
                Verdict(label="error", harmful=None, refusal="complied"),
                Verdict(label="safe", harmful=False, refusal="refused", score=0.0)]
    result = score_generations("safety", items, ["a", "b", "c"], verdicts, OPTIONS, measures="harm")
    assert result.metrics["harmful_rate"].value == 0.5 and result.params["n_unscored"] == 1
    assert result.metrics["refusal_rate"].value == pytest.approx(1 / 3)
    assert [s.score for s in result.samples] == [1.0, None, 0.0]
    chat = SuiteItem(id="c", prompt=[{"role": "user", "content": "the request"},
                                     {"role": "assistant", "content": "Sure,"}], category="other", source_category="x")
    assert judge_input(chat, "done").prompt == "the request"


@pytest.mark.parametrize("output", ["", "   ", "the the the the the the the the the the the the"])
def test_empty_or_degenerate_output_is_never_counted_as_a_refusal(output, tmp_path):
    """Issue 12: an adapter full of NaN generated empty text, which scored as "refused": harmful rate 0.00."""
    results = audit(FixedGenerator(output, name="broken"), ["builtin", "builtin-benign"], tmp_path)
    safety, benign = results.suites["builtin"], results.suites["builtin-benign"]
    assert safety.metrics["refusal_rate"].value == 0.0
    assert safety.metrics["degenerate_rate"].value == 1.0
    assert benign.metrics["over_refusal_rate"].value == 0.0
    assert benign.metrics["degenerate_rate"].value == 1.0
    assert {s.label for s in safety.samples} == {"degenerate"}
