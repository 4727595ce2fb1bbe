"""The BBQ suites end to end on scripted generators and the tiny model."""

import pytest

from safepeft.audit.base import AuditOptions, Suite
from safepeft.audit.fairness.builtin import builtin_records
from safepeft.audit.fairness.items import DIMENSIONS, item_from_record
from safepeft.audit.fairness.prompts import LETTERS, choices, cloze_prompt, letter_prompt, loglikelihood_requests
from safepeft.audit.fairness.scoring import answer_items
from safepeft.audit.suites import SUITES
from safepeft.errors import ConfigError
from safepeft.models.doubles import FixedGenerator
from safepeft.models.hf import naive_loglikelihood
from safepeft.records.results import ArtifactRef, AuditResults, SuiteResult

ITEMS = [item_from_record(r) for r in builtin_records()]
BY_PROMPT = {cloze_prompt(i): i for i in ITEMS}
BY_LETTER_PROMPT = {letter_prompt(i): i for i in ITEMS}


def scripted(answer_of) -> FixedGenerator:
    """A generator whose log-likelihood prefers, for every item, the answer index answer_of(item) returns."""

    def logprob(request):
        item = BY_PROMPT[request.context[-1]["content"]]
        wanted = item.answers[answer_of(item)]
        return 0.0 if request.continuation == wanted else -10.0

    def letter(prompt):
        return f"The answer is {LETTERS[answer_of(BY_LETTER_PROMPT[prompt])]}."

    return FixedGenerator(letter, logprob=logprob, name="scripted")


def run(generator, **options) -> SuiteResult:
    return SUITES.get("bbq-builtin")().run(generator, None, AuditOptions(bootstrap=200, **options))


def test_registered_suites_follow_the_contract():
    for name in ("bbq", "bbq-templates", "bbq-builtin"):
        suite = SUITES.get(name)
        assert issubclass(suite, Suite) and suite.kind == "fairness" and suite.description
    assert SUITES.get("bbq").needs_source and SUITES.get("bbq-templates").needs_source
    assert not SUITES.get("bbq-builtin").needs_source
    with pytest.raises(ConfigError, match="bbq:PATH"):
        SUITES.get("bbq")().run(FixedGenerator("A"), None, AuditOptions())


def test_always_stereotyped_model():
    result = run(scripted(lambda item: item.biased))
    assert result.kind == "fairness" and result.n == len(ITEMS)
    assert result.metrics["accuracy_ambig"].value == 0.0
    assert result.metrics["bias_ambig"].value == pytest.approx(1.0)
    assert result.metrics["bias_disambig"].value == pytest.approx(1.0)
    assert result.metrics["accuracy_disambig"].value == pytest.approx(0.5)
    assert list(result.by_category) == list(DIMENSIONS.values())
    for category in result.by_category.values():
        assert category.metrics["bias_ambig"].value > 0


def test_always_unknown_model():
    result = run(scripted(lambda item: item.unknown))
    assert result.metrics["accuracy_ambig"].value == 1.0
    assert result.metrics["bias_ambig"].value == 0.0
    assert result.metrics["bias_disambig"].value is None
    assert all(s.score is None and s.label in s.extra["answers"] for s in result.samples)


def test_perfect_model_is_accurate_and_unbiased():
    result = run(scripted(lambda item: item.label))
    for name in ("accuracy_ambig", "accuracy_disambig"):
        assert result.metrics[name].value == 1.0
    assert result.metrics["bias_disambig"].value == pytest.approx(0.0)
    low, high = result.metrics["bias_disambig"].ci95
    assert low < 0 < high


def test_generate_mode_parses_letters_and_counts_unparsed():
    result = run(scripted(lambda item: item.biased), mode="generate")
    assert result.metrics["bias_ambig"].value == pytest.approx(1.0)
    assert result.samples[0].completion.startswith("The answer is")
    silent = run(FixedGenerator("I would rather not say."), mode="generate")
    assert silent.params["n_unparsed"] == len(ITEMS)
    assert silent.metrics["accuracy_ambig"].value == 0.0 and silent.metrics["bias_disambig"].value is None


def test_subset_options_and_results_round_trip(tmp_path):
    result = run(scripted(lambda item: item.label), per_category=4, seed=3)
    assert result.n == 36 and {c.n for c in result.by_category.values()} == {4}
    assert result.params["per_category"] == 4 and result.params["mode"] == "loglikelihood"
    sample = result.samples[0]
    assert sample.category in DIMENSIONS.values() and sample.extra["condition"] in ("ambig", "disambig")
    path = tmp_path / "results.json"
    AuditResults(model=ArtifactRef(spec="scripted"), suites={"bbq-builtin": result}).write(path)
    assert AuditResults.model_validate_json(path.read_text()).suites["bbq-builtin"] == result


def test_shared_prefix_scoring_equals_naive_scoring_on_tiny_model(tiny_loaded):
    generator = tiny_loaded.generator(batch_size=5, progress=False)
    items = ITEMS[::12][:6]
    requests = [r for item in items for r in loglikelihood_requests(item, None)]
    shared = generator.loglikelihood(requests)
    naive = naive_loglikelihood(generator, requests)
    assert shared == pytest.approx(naive, abs=1e-4)
    assert len(set(shared)) > len(items), "degenerate model: the comparison would prove nothing"
    answers = answer_items(items, generator, AuditOptions())
    start = 0
    for item, answer in zip(items, answers, strict=True):
        count = len(choices(item))
        best = max(range(count), key=lambda j: (naive[start + j], -j))
        assert answer.chosen == choices(item)[best][1]
        start += count


def test_real_and_rebuilt_suites(bbq_dir):
    options = AuditOptions(per_category=8, bootstrap=100)
    real = SUITES.get("bbq")(str(bbq_dir)).run(FixedGenerator("A"), None, options)
    assert real.n == 48 and len(real.by_category) == 6
    rebuilt = SUITES.get("bbq-templates")(str(bbq_dir / "templates")).run(FixedGenerator("A"), None, options)
    assert set(rebuilt.by_category) == set(DIMENSIONS.values()) and rebuilt.n == 72
    assert rebuilt.params["template_seed"] == 0
