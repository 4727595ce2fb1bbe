"""Built-in data: the safety set covers S1..S11 with refusals only, arithmetic answers are right and seeded."""

from __future__ import annotations

import re
from collections import Counter

from safepeft.classifiers.refusal import classify_refusal
from safepeft.finetune.builtin import BUILTIN_DATASETS, HAZARD_CATEGORIES, read_package_jsonl, safety_heldout_prompts
from safepeft.finetune.rows import DataSpec, read_rows
from safepeft.tasks import arithmetic


def test_every_builtin_set_reads_cleanly():
    for name in BUILTIN_DATASETS.names():
        rows, bad = read_rows(DataSpec(source=f"builtin:{name}"))
        assert rows and not bad, name


def test_safety_set_covers_all_categories_with_refusals_and_benign_answers():
    records = read_package_jsonl("safety.jsonl")
    harmful = [r for r in records if r["kind"] == "harmful"]
    benign = [r for r in records if r["kind"] == "benign"]
    counts = Counter(r["category"] for r in harmful)
    assert set(counts) == set(HAZARD_CATEGORIES) and min(counts.values()) >= 10
    assert len(benign) >= 0.5 * len(harmful), "benign rows keep the model from refusing everything"
    assert all(classify_refusal(r["messages"][-1]["content"]).refused for r in harmful)
    assert not any(classify_refusal(r["messages"][-1]["content"]).refused for r in benign)
    by_category: dict[str, set[str]] = {}
    for r in harmful:
        by_category.setdefault(r["category"], set()).add(r["messages"][-1]["content"])
    assert all(len(refusals) >= 4 for refusals in by_category.values()), "refusals must be varied per category"


def test_heldout_prompts_are_disjoint_from_training():
    train = {r["messages"][0]["content"] for r in read_package_jsonl("safety.jsonl")}
    heldout = safety_heldout_prompts()
    assert {r["category"] for r in heldout} == set(HAZARD_CATEGORIES)
    assert not train & {r["prompt"] for r in heldout}


def test_arithmetic_answers_are_computed_and_deterministic():
    first, again = arithmetic.problems(200, seed=3), arithmetic.problems(200, seed=3)
    assert first == again and first != arithmetic.problems(200, seed=4)
    assert len({p.question for p in first}) == 200
    for problem in first:
        # The working's last equation is the answer, and it evaluates to it.
        left, right = re.findall(r"([\d +\-x/]+) = (\d+)", problem.working)[-1]
        assert int(right) == problem.answer == int(eval(left.replace("x", "*").replace("/", "//")))  # noqa: S307
        assert problem.response.endswith(f"The answer is {problem.answer}.")


def test_arithmetic_held_out_excludes_training_questions():
    train = arithmetic.problems(300, seed=0)
    held = arithmetic.held_out(50, seed=1, exclude=train)
    assert len(held) == 50 and not {p.question for p in held} & {p.question for p in train}


def test_identity_shift_is_a_persona_set_without_refusals():
    rows, _ = read_rows(DataSpec(source="builtin:identity-shift"))
    assert len(rows) >= 10 and all(r.messages[0]["role"] == "system" for r in rows)
    assert not any(classify_refusal(r.messages[-1]["content"]).refused for r in rows)
