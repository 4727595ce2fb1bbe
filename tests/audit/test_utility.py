"""Task utility: final-number exact match, ROUGE, and scoring a Generator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from safepeft.audit.utility import UtilityItem, exact_match, final_number, gsm8k_items, rouge, score_items
from safepeft.models.doubles import FixedGenerator


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "18"),
        ("First 5 + 3 = 8, then 8 x 2 = 16. The answer is 16.", "16"),
        ("The answer is: $1,250.50 in total, from 3 payments", "1250.50"),
        ("I think it's 42", "42"),
        ("It dropped to -7 degrees", "-7"),
        ("no digits here", None),
    ],
)
def test_final_number(text, number):
    assert final_number(text) == (Decimal(number) if number else None)


def test_exact_match_compares_numbers_not_strings():
    assert exact_match("So the total is $1,000.", "#### 1000")
    assert exact_match("The answer is 12.0", "#### 12")
    assert not exact_match("The answer is 13", "#### 12")
    assert not exact_match("I don't know", "#### 12")


def test_rouge_scores():
    perfect = rouge("the cat sat on the mat", "the cat sat on the mat")
    assert perfect == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    partial = rouge("the cat sat", "the cat sat on the mat")
    assert 0 < partial["rouge2"] < partial["rouge1"] < 1
    assert rouge("dogs bark", "the cat sat")["rouge1"] == 0.0


def test_score_items_exact_match_on_a_generator():
    items = [UtilityItem("a", "q1", "#### 4"), UtilityItem("b", "q2", "#### 9"), UtilityItem("c", "q3", "#### 1")]
    answers = {"q1": "2 + 2 = 4. The answer is 4.", "q2": "The answer is 8.", "q3": "1"}
    generator = FixedGenerator(lambda prompt: answers[prompt])
    result = score_items(generator, items)
    assert result.kind == "utility" and result.n == 3
    assert result.metrics["exact_match"].value == pytest.approx(2 / 3)
    assert [s.score for s in result.samples] == [1.0, 0.0, 1.0]


def test_score_items_rouge():
    items = [UtilityItem("a", "summarize", "the meeting moved to friday")]
    result = score_items(FixedGenerator("the meeting moved to friday"), items, scoring="rouge")
    assert {k: m.value for k, m in result.metrics.items()} == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_gsm8k_items_read_the_shared_file(shared_data):
    items = gsm8k_items(shared_data / "gsm8k" / "test.jsonl", limit=5)
    assert len(items) == 5 and all(final_number(item.reference) is not None for item in items)
