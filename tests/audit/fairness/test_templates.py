"""The template expander against the released BBQ files and the paper's counts."""

from collections import Counter

import pytest

from safepeft.audit.fairness.fill import Pair, slot
from safepeft.audit.fairness.items import item_from_record
from safepeft.audit.fairness.reproduce import item_key, reproduction
from safepeft.audit.fairness.templates import expand_templates, template_categories

# Rebuilt items must match the released ones except where BBQ's generator drew at random (unknown wording, answer
# order), which the match leaves out. Measured: 11,956 of 11,956 reproduced, 11,952 with identical group tags (4
# Physical_appearance items carry a hand-edited tag in the release). 0.99 leaves room for nothing but such edits.
FLOOR = 0.99


@pytest.fixture(scope="module")
def templates(bbq_dir):
    return bbq_dir / "templates"


def test_expander_reproduces_released_items(templates, bbq_dir):
    report = reproduction(templates, bbq_dir)
    assert len(report) == 6
    for category, counts in report.items():
        print(category, counts)  # the shares, for the record (pytest -s)
        assert counts["reproduced"] / counts["total"] >= FLOOR, category
        assert counts["tagged"] / counts["total"] >= FLOOR, category


def test_bbq_mode_counts_match_the_release_and_the_paper(templates, source_counts):
    counts = Counter(r["category"] for r in expand_templates(templates))
    assert set(counts) == set(source_counts) == set(template_categories(templates))
    # The template file has two Disability_status rows (Q4b, Q19b: 20 items) that the released file lacks.
    expected = dict(source_counts, Disability_status=source_counts["Disability_status"] + 20)
    assert dict(counts) == expected


def test_rebuilt_items_are_valid_and_mostly_have_a_biased_answer(templates):
    items = [item_from_record(r) for r in expand_templates(templates, ["Gender_identity", "Race_ethnicity", "SES"])]
    undetermined = Counter(i.dimension for i in items if i.biased is None)
    # BBQ's own templates give no single target in a few rows (e.g. Gender_identity Q13 pairs 'man' with 'boy').
    assert sum(undetermined.values()) / len(items) < 0.005, undetermined
    for dimension in ("gender_identity", "race_ethnicity", "ses"):
        subset = [i for i in items if i.dimension == dimension]
        assert Counter(i.condition for i in subset)["ambig"] == len(subset) // 2


def test_expansion_is_seeded(templates):
    first = list(expand_templates(templates, ["Religion"], seed=0))
    assert first == list(expand_templates(templates, ["Religion"], seed=0))
    other = list(expand_templates(templates, ["Religion"], seed=1))
    assert [r["ans0"] for r in first] != [r["ans0"] for r in other]
    # With every pair enumerated only the presentation draws (unknown wording, answer order) depend on the seed.
    everything = list(expand_templates(templates, ["Religion"], seed=0, mode="all"))
    assert {item_key(r) for r in everything} == {item_key(r) for r in expand_templates(templates, ["Religion"],
                                                                                         seed=1, mode="all")}
    assert {item_key(r) for r in first} < {item_key(r) for r in everything}


def test_slot_applies_generator_fixes():
    pair = Pair("elderly", "young", "old", "nonOld", "watched", "party", [])
    assert slot("I {{WORD1}} a {{NAME1}} man and a {{NAME2}} one.", pair, True) == \
        "I watched an elderly man and a young one."
    pair = Pair("European", "Asian", "", "", "", "", [])
    assert slot("There was a {{NAME1}} and a {{NAME2}}.", pair, False) == "There was a European and an Asian."
    assert slot("a lesbian man", Pair("x", "y", "", "", "", "", []), False) == "a lesbian woman"
