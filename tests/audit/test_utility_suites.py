"""`arithmetic` and `gsm8k` utility suites: held out from training, scored by exact match on the final number."""

import re

import pytest

from safepeft.audit.base import AuditOptions
from safepeft.audit.suites import SUITES
from safepeft.audit.suites.utility import TRAIN_ROWS, TRAIN_SEED
from safepeft.errors import ConfigError
from safepeft.models.doubles import FixedGenerator
from safepeft.tasks import arithmetic


def _solver(prompt):
    """A generator that answers every built-in problem right (it recomputes the answer from the same generator)."""
    problems = {p.question: p for p in arithmetic.held_out(200, 10_000, arithmetic.problems(TRAIN_ROWS, TRAIN_SEED))}
    question = prompt.split(" Solve the problem.")[0]
    return problems[question].response if question in problems else "no idea"


def test_arithmetic_is_held_out_from_training_rows():
    items = SUITES.get("arithmetic")(None, name="arithmetic").load()
    train = {p.question for p in arithmetic.problems(TRAIN_ROWS, TRAIN_SEED)}
    assert len(items) == 40 and len({i.id for i in items}) == 40
    assert not any(item.prompt.split(" Solve the problem.")[0] in train for item in items)


def test_arithmetic_exact_match_is_one_for_a_solver_and_zero_for_a_guesser():
    suite = SUITES.get("arithmetic")(None, name="arithmetic")
    right = suite.run(FixedGenerator(_solver), None, AuditOptions(limit=10, bootstrap=200))
    wrong = suite.run(FixedGenerator("The answer is -1."), None, AuditOptions(limit=10, bootstrap=200))
    assert right.kind == "utility" and right.n == 10
    assert right.metrics["exact_match"].value == 1.0 and wrong.metrics["exact_match"].value == 0.0


def test_gsm8k_reads_real_file(shared_data):
    suite = SUITES.get("gsm8k")(str(shared_data / "gsm8k" / "test.jsonl"), name="gsm8k")
    items = suite.load()
    assert len(items) == 1319
    assert all(re.search(r"####\s*-?[\d,]+", item.reference) for item in items)


def test_sources_are_checked():
    for bad in ("x", "0", "-3", "99999"):
        with pytest.raises(ConfigError, match="takes an item count"):
            SUITES.get("arithmetic")(bad, name="arithmetic").load()
    many = SUITES.get("arithmetic")("150", name="arithmetic").load()
    default = SUITES.get("arithmetic")(None, name="arithmetic").load()
    assert len(many) == 150 and len(default) == 40 and many[:40] == default  # a longer suite extends the default
    with pytest.raises(ConfigError, match="needs a file"):
        SUITES.get("gsm8k")(None, name="gsm8k").load()
