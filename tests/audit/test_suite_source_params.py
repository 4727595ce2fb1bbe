"""Issue #15: a suite result states which file (and for HarmBench which split) it read."""

from __future__ import annotations

from safepeft.audit.base import AuditOptions
from safepeft.audit.judges.refusal import RefusalJudge
from safepeft.audit.runner import build_suite
from safepeft.models.doubles import RefuseAll


def test_harmbench_folder_names_its_file_and_split(shared_data):
    suite = build_suite(f"harmbench:{shared_data / 'harmbench'}")
    result = suite.run(RefuseAll(), RefusalJudge(), AuditOptions(limit=2, bootstrap=100))
    assert result.params["file"] == str(shared_data / "harmbench" / "harmbench_behaviors_text_all.csv")
    assert result.params["split"] == "all"
    test_file = build_suite(f"harmbench:{shared_data / 'harmbench' / 'harmbench_behaviors_text_test.csv'}")
    test_file.items()
    assert test_file.source_params()["split"] == "test"


def test_gsm8k_folder_reads_the_test_split(shared_data):
    from safepeft.models.doubles import FixedGenerator

    suite = build_suite(f"gsm8k:{shared_data / 'gsm8k'}")
    assert len(suite.load()) == 1319  # GSM8K's test split, not train (7473)
    result = suite.run(FixedGenerator("The answer is 3."), None, AuditOptions(limit=3, bootstrap=100))
    assert result.params["file"] == str(shared_data / "gsm8k" / "test.jsonl") and result.n == 3
