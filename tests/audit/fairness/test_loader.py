"""Loading BBQ: real files (counts from SOURCE.md), single files, hub ids, bad input, balanced subsets."""

import json
from collections import Counter

import pytest

from safepeft.audit.fairness.items import DIMENSIONS, dimension_of, item_from_record
from safepeft.audit.fairness.loader import load_bbq, select
from safepeft.errors import DataError

RECORD = {
    "example_id": 7, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
    "category": "Age",
    "answer_info": {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"], "ans2": ["Unknown", "unknown"]},
    "additional_metadata": {"stereotyped_groups": ["old"]},
    "context": "A grandfather and a grandson ...", "question": "Who forgot?",
    "ans0": "The grandfather", "ans1": "The grandson", "ans2": "Unknown", "label": 2,
}


def test_real_files_load_with_documented_counts(bbq_dir, source_counts):
    items, provenance = load_bbq(str(bbq_dir))
    counts = Counter(item.dimension for item in items)
    included = {DIMENSIONS[name]: n for name, n in source_counts.items() if (bbq_dir / f"{name}.jsonl").exists()}
    assert len(included) == 6
    assert dict(counts) == included
    assert set(counts) <= set(DIMENSIONS.values())
    assert len(provenance["files"]) == 6 and provenance["skipped"] == []
    for dimension in counts:  # SOURCE.md: exactly half ambig/disambig and half neg/nonneg per file
        subset = [i for i in items if i.dimension == dimension]
        assert Counter(i.condition for i in subset) == {"ambig": len(subset) // 2, "disambig": len(subset) // 2}
        assert Counter(i.polarity for i in subset) == {"neg": len(subset) // 2, "nonneg": len(subset) // 2}
    assert len({i.id for i in items}) == len(items)


def test_single_file_and_intersectional_skipped(tmp_path):
    path = tmp_path / "mixed.jsonl"
    other = dict(RECORD, category="Race_x_gender", example_id=8)
    path.write_text(json.dumps(RECORD) + "\n\n" + json.dumps(other) + "\n", encoding="utf-8")
    items, provenance = load_bbq(str(path))
    assert [i.id for i in items] == ["age-7"]
    assert provenance["skipped"] == ["Race_x_gender"]
    assert items[0].unknown == 2 and items[0].target == 0 and items[0].biased == 0


def test_hub_id_goes_through_datasets(monkeypatch):
    import datasets

    calls = []

    def fake_load(name, config=None):
        calls.append((name, config))
        return datasets.DatasetDict({"test": datasets.Dataset.from_list([RECORD])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    items, provenance = load_bbq("someone/bbq@All")
    assert calls == [("someone/bbq", "All")]
    assert len(items) == 1 and provenance["source"] == "someone/bbq@All"


def test_hub_failure_is_a_data_error(monkeypatch):
    import datasets

    def fail(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(DataError, match="Could not load BBQ dataset 'someone/bbq'"):
        load_bbq("someone/bbq")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"label": 5}, "label 5"),
        ({"question_polarity": "positive"}, "question_polarity='positive'"),
        ({"category": "Height"}, "Unknown BBQ category 'Height'"),
        ({"ans2": "Maybe", "answer_info": {"ans0": ["a", "x"], "ans1": ["b", "y"], "ans2": ["Maybe", "z"]}},
         "no single 'unknown' answer"),
    ],
)
def test_bad_records(change, message):
    with pytest.raises(DataError, match=message):
        item_from_record(dict(RECORD, **change))


def test_missing_fields_and_bad_paths(tmp_path):
    with pytest.raises(DataError, match="lacks question"):
        item_from_record({k: v for k, v in RECORD.items() if k != "question"})
    (tmp_path / "broken.jsonl").write_text("{not json}\n", encoding="utf-8")
    with pytest.raises(DataError, match="broken.jsonl:1 is not valid JSON"):
        load_bbq(str(tmp_path / "broken.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No \\*.jsonl files"):
        load_bbq(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="neither a folder"):
        load_bbq(str(tmp_path / "nothing-here.jsonl"))


def test_dimension_names():
    assert dimension_of("Gender_identity") == dimension_of("gender identity") == "gender_identity"
    assert dimension_of("SES") == "ses"
    assert sorted(DIMENSIONS.values()) == sorted(
        ["age", "disability_status", "gender_identity", "nationality", "physical_appearance", "race_ethnicity",
         "religion", "ses", "sexual_orientation"])


def test_select_is_seeded_balanced_and_covers_dimensions(bbq_dir):
    items, _ = load_bbq(str(bbq_dir))
    chosen = select(items, per_category=8, limit=None, seed=1)
    assert Counter(i.dimension for i in chosen) == {d: 8 for d in {i.dimension for i in items}}
    for dimension in {i.dimension for i in chosen}:
        cells = Counter((i.condition, i.polarity) for i in chosen if i.dimension == dimension)
        assert set(cells.values()) == {2}, cells
    assert select(items, 8, None, 1) == chosen
    assert select(items, 8, None, 2) != chosen
    limited = select(items, None, limit=12, seed=0)
    assert len(limited) == 12 and len({i.dimension for i in limited}) == 6
    assert select(items, None, None, 0) == items


@pytest.mark.parametrize("limit", [8, 9, 2])
def test_limit_balances_ambiguous_and_disambiguated(bbq_dir, limit):  # issue #15: --limit 8 gives 4 + 4
    items, _ = load_bbq(str(bbq_dir))
    counts = Counter(i.condition for i in select(items, None, limit=limit, seed=0))
    assert sum(counts.values()) == limit and abs(counts["ambig"] - counts["disambig"]) <= 1
