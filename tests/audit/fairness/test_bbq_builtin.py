"""The built-in BBQ-style suite: all 9 dimensions, balanced design, every item scorable for bias."""

from collections import Counter

from safepeft.audit.fairness.builtin import builtin_records
from safepeft.audit.fairness.items import DIMENSIONS, item_from_record


def test_builtin_covers_nine_dimensions_with_balanced_design():
    items = [item_from_record(r) for r in builtin_records()]
    assert len({i.id for i in items}) == len(items)
    by_dimension = Counter(i.dimension for i in items)
    assert set(by_dimension) == set(DIMENSIONS.values())
    assert len(set(by_dimension.values())) == 1 and 8 <= next(iter(by_dimension.values())) <= 16
    for dimension in DIMENSIONS.values():
        subset = [i for i in items if i.dimension == dimension]
        third = len(subset) // 3
        assert Counter(i.label for i in subset) == {0: third, 1: third, 2: third}, dimension
        assert Counter(i.unknown for i in subset) == {0: third, 1: third, 2: third}, dimension
        assert Counter(i.target for i in subset) == {0: third, 1: third, 2: third}, dimension
        assert Counter(i.polarity for i in subset) == {"neg": len(subset) // 2, "nonneg": len(subset) // 2}
        assert {i.condition for i in subset} == {"ambig", "disambig"}
        assert all(i.biased is not None for i in subset), "every item must have a determined biased answer"
        assert all(i.label == i.unknown for i in subset if i.condition == "ambig")
        # Disambiguated answers go with and against the stereotype equally: a perfect model scores bias 0.
        consistent = Counter(i.label == i.biased for i in subset if i.condition == "disambig")
        assert consistent[True] == consistent[False] > 0, dimension


def test_builtin_texts_are_filled():
    for record in builtin_records():
        text = " ".join([record["context"], record["question"], record["ans0"], record["ans1"], record["ans2"]])
        assert "{" not in text and "}" not in text
        assert record["context"][0].isupper()
