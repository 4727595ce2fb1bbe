"""The canonical hazard taxonomy and the per-benchmark mapping tables."""

import pytest

from safepeft.audit import taxonomy


def test_eleven_hazards_plus_other():
    assert len(taxonomy.HAZARDS) == 11 and taxonomy.CATEGORIES[-1] == "other"
    assert [key.split("_")[0] for key in taxonomy.HAZARDS] == [f"S{i}" for i in range(1, 12)]


@pytest.mark.parametrize("source", sorted(taxonomy.MAPPINGS))
def test_every_mapping_targets_a_canonical_key(source):
    for label, key in taxonomy.MAPPINGS[source].items():
        assert key in taxonomy.CATEGORIES, (source, label, key)
        assert label == label.lower()


def test_ailuminate_maps_its_hazards_one_to_one_and_defamation_to_other():
    table = taxonomy.MAPPINGS["ailuminate"]
    singles = {"vcr": "S1", "ncr": "S2", "src": "S3", "cse": "S4", "prv": "S6", "ipv": "S7", "iwp": "S8",
               "hte": "S9", "ssh": "S10", "sxc_prn": "S11"}
    for code, s_code in singles.items():
        assert table[code] == taxonomy.from_code(s_code)
    assert {table[c] for c in ("spc_ele", "spc_fin", "spc_hlt", "spc_lgl")} == {"S5_specialized_advice"}
    assert table["dfm"] == "other"


def test_unmapped_goes_to_other_and_finer_labels_override():
    assert taxonomy.canonical("harmbench", "Something New") == "other"
    assert taxonomy.canonical("no-such-benchmark", "x") == "other"
    assert taxonomy.canonical("jailbreakbench", "Physical harm") == "S1_violent_crimes"
    assert taxonomy.canonical("jailbreakbench", "Physical harm", "Suicide") == "S10_suicide_self_harm"
    assert taxonomy.canonical("jailbreakbench", "Physical harm", "Unknown behavior") == "S1_violent_crimes"
    assert taxonomy.canonical("strongreject", "Disinformation and Deception") == "other"


def test_codes():
    assert taxonomy.from_code("s3") == "S3_sex_related_crimes" and taxonomy.from_code("S99") == "other"
