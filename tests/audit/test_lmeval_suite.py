"""`--suite lm-eval:TASK`: lm-eval tasks scored through its API on our Generator (issue 15, item 10).

Offline: the tasks are YAML files over a handful of benign trivia rows written to a tmp dir (`dataset_path: json`),
run on the tiny in-process model. Expected values come from calling the same Generator directly.
"""

from __future__ import annotations

import json
import sys

import pytest

from safepeft.audit.base import AuditOptions
from safepeft.audit.runner import build_suite, build_suites, run_audit
from safepeft.audit.selection import in_validation
from safepeft.errors import ConfigError, MissingDependencyError
from safepeft.records import GenParams, LoglikelihoodRequest
from safepeft.records.results import ArtifactRef

ROWS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "answer": 0},
    {"question": "How many legs does a spider have?", "choices": ["six", "eight", "ten"], "answer": 1},
    {"question": "Which planet do we live on?", "choices": ["Mars", "Venus", "Earth"], "answer": 2},
    {"question": "What is frozen water called?", "choices": ["ice", "steam", "sand"], "answer": 0},
    {"question": "Which animal says moo?", "choices": ["cat", "cow", "dog"], "answer": 1},
    {"question": "How many days are in a week?", "choices": ["five", "seven", "nine"], "answer": 1},
]
TEXT = "Question: {{question}}\\nAnswer:"
OPTIONS = AuditOptions(bootstrap=200)


def write_task(directory, name, rows, body):
    data = directory / f"{name}.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    path = directory / f"{name}.yaml"
    path.write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
                    f"test_split: test\ndoc_to_text: \"{TEXT}\"\n{body}", encoding="utf-8")
    return path


MULTIPLE_CHOICE = ("output_type: multiple_choice\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\n"
                   "metric_list:\n  - metric: acc\n  - metric: acc_norm\n")
GENERATE = ("output_type: generate_until\ndoc_to_target: \"{{target}}\"\n"
            "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 6\n  do_sample: false\n"
            "metric_list:\n  - metric: exact_match\n")


def chat(row):
    return [{"role": "user", "content": f"Question: {row['question']}\nAnswer:"}]


def test_multiple_choice_accuracy_is_the_argmax_of_our_loglikelihoods(tiny_loaded, tmp_path):
    pytest.importorskip("lm_eval")
    generator = tiny_loaded.generator(progress=False)
    path = write_task(tmp_path, "trivia_mc", ROWS, MULTIPLE_CHOICE)
    result = build_suite(f"lm-eval:{path}").run(generator, None, OPTIONS)

    expected = []  # lm-eval's chat mode: the choice follows the assistant header with no delimiter
    for row in ROWS:
        scores = generator.loglikelihood([LoglikelihoodRequest(context=chat(row), continuation=c)
                                          for c in row["choices"]])
        expected.append(float(max(range(len(scores)), key=lambda j: (scores[j], -j)) == row["answer"]))
    assert [s.id for s in result.samples] == [f"trivia_mc/{i}" for i in range(len(ROWS))]
    assert [s.score for s in result.samples] == expected
    assert result.kind == "utility" and result.n == len(ROWS)
    accuracy = result.metrics["accuracy"]
    assert accuracy.value == pytest.approx(sum(expected) / len(ROWS))
    assert accuracy.ci95[0] <= accuracy.value <= accuracy.ci95[1] and accuracy.ci95[1] > accuracy.ci95[0]
    assert result.params["lm_eval"]["trivia_mc"]["acc,none"] == pytest.approx(accuracy.value)  # lm-eval agrees
    assert result.metrics["acc"] == accuracy and "acc_norm" in result.metrics
    assert result.by_category["trivia_mc"].n == len(ROWS) and result.params["main_metric"] == {"trivia_mc": "acc"}


def test_generate_until_tasks_score_what_our_generator_wrote(tiny_loaded, tmp_path):
    pytest.importorskip("lm_eval")
    generator = tiny_loaded.generator(progress=False)
    params = GenParams(max_new_tokens=6, stop=("\n",))
    written = generator.generate([chat(row) for row in ROWS], params)
    # The first row's target is what the model writes, so its exact match is 1 and the others (real answers) 0.
    rows = [{**row, "target": written[0] if i == 0 else row["choices"][row["answer"]]} for i, row in enumerate(ROWS)]
    path = write_task(tmp_path, "trivia_gen", rows, GENERATE)
    result = build_suite(f"lm-eval:{path}").run(generator, None, OPTIONS)
    assert [s.completion for s in result.samples] == written
    assert [s.score for s in result.samples] == [float(w == r["target"]) for w, r in zip(written, rows, strict=True)]
    assert result.samples[0].score == 1.0 and result.metrics["accuracy"].value == pytest.approx(
        sum(s.score for s in result.samples) / len(rows))


def test_limit_split_and_the_audit_runner_with_its_store(tiny_loaded, tmp_path):
    pytest.importorskip("lm_eval")
    from safepeft.models.cached import CachedGenerator
    from safepeft.store import RunStore

    path = write_task(tmp_path, "trivia_mc", ROWS, MULTIPLE_CHOICE)
    generator = tiny_loaded.generator(progress=False)
    options = AuditOptions(bootstrap=200, split="validation", validation_share=0.5)
    store = RunStore(tmp_path / "out")
    results = run_audit(CachedGenerator(generator, store, progress=False), build_suites([f"lm-eval:{path}"]), None,
                        options, model=ArtifactRef(spec="tiny"), out_dir=tmp_path / "out", store=store,
                        show_progress=False)
    result = results.suites[f"lm-eval:{path}"]
    assert [s.id for s in result.samples] == [f"trivia_mc/{i}" for i in range(len(ROWS))
                                              if in_validation(f"trivia_mc/{i}", 0.5)]
    assert result.params["split"] == "validation"
    limited = build_suite(f"lm-eval:{path}").run(generator, None, AuditOptions(bootstrap=200, limit=2))
    assert limited.n == 2 and limited.params["lm_eval"]["trivia_mc"]["sample_len"] == 2


def test_perplexity_tasks_are_refused_before_running(tmp_path):
    pytest.importorskip("lm_eval")
    body = ("output_type: loglikelihood_rolling\ndoc_to_target: \"{{question}}\"\n"
            "metric_list:\n  - metric: word_perplexity\n")
    path = write_task(tmp_path, "trivia_ppl", ROWS, body)
    with pytest.raises(ConfigError, match="loglikelihood_rolling"):
        build_suite(f"lm-eval:{path}").run(None, None, OPTIONS)


def test_source_names_the_tasks_and_the_result():
    suite = build_suite("lm-eval:arc_easy, mmlu")
    assert suite.kind == "utility" and suite.tasks() == ["arc_easy", "mmlu"]
    assert suite.result_name == "lm-eval:arc_easy, mmlu"
    with pytest.raises(ConfigError, match="at least one task"):
        build_suite("lm-eval").run(None, None, OPTIONS)


def test_without_lm_eval_the_suite_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    with pytest.raises(MissingDependencyError) as raised:
        build_suite("lm-eval:arc_easy").run(None, None, OPTIONS)
    assert "safepeft[lmeval]" in raised.value.render() and "\n" not in str(raised.value)
