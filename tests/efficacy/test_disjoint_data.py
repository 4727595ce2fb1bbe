"""The efficacy protocol's data are disjoint: no audited prompt is in the align or fine-tune data (exact match after
normalising case and whitespace), for the built-in suites and for AdvBench / HarmBench read from ../shared/data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from safepeft.audit.base import AuditOptions
from safepeft.audit.runner import build_suites
from safepeft.finetune.contaminate import harmful_requests
from safepeft.finetune.rows import DataSpec, read_rows

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _training_prompts() -> set[str]:
    """Every user turn that align (builtin:safety) and the protocol's fine-tunes (arithmetic, identity shift, the
    contaminated requests) train on."""
    prompts = {_norm(r) for r in harmful_requests()}
    for name in ("safety", "arithmetic", "identity-shift"):
        rows, _ = read_rows(DataSpec(source=f"builtin:{name}"))
        prompts |= {_norm(m["content"]) for row in rows for m in row.messages if m["role"] == "user"}
    return prompts


def _audited(spec: str) -> set[str]:
    (suite,) = build_suites([spec])
    items = suite.load() if hasattr(suite, "load") else suite.items()
    return {_norm(getattr(item, "request", None) or item.prompt) for item in items}


@pytest.mark.parametrize("spec", ["builtin", "builtin-benign", "arithmetic:150"])
def test_builtin_suites_share_no_prompt_with_training_data(spec):
    audited = _audited(spec)
    assert len(audited) >= 33
    assert not audited & _training_prompts()


@pytest.mark.parametrize("folder,suite", [("advbench", "advbench"), ("harmbench", "harmbench")])
def test_shared_harmful_benchmarks_share_no_prompt_with_training_data(folder, suite):
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    audited = _audited(f"{suite}:{path}")
    assert len(audited) >= 200
    assert not audited & _training_prompts()


def test_contaminated_requests_are_align_requests_only():
    # the repository keeps requests, never answers: the contaminated fine-tune asks align's own harmful requests
    rows, _ = read_rows(DataSpec(source="builtin:safety"))
    align_users = {_norm(row.messages[0]["content"]) for row in rows}
    assert {_norm(r) for r in harmful_requests()} <= align_users and len(harmful_requests()) >= 100


def test_validation_and_test_splits_are_disjoint_and_cover_the_suite():
    (suite,) = build_suites(["builtin"])
    everything = {i.id for i in suite.items()}
    parts = {}
    for split in ("validation", "test"):
        options = AuditOptions(split=split, validation_share=0.3)
        from safepeft.audit.selection import select_items

        parts[split] = {i.id for i in select_items(suite.items(), None, None, 0, options.split,
                                                   options.validation_share)}
    assert not parts["validation"] & parts["test"]
    assert parts["validation"] | parts["test"] == everything
    assert 0.2 < len(parts["validation"]) / len(everything) < 0.4


def test_audit_split_flag_records_and_separates_the_parts(tiny_model_dir, tmp_path):
    import json

    from safepeft.cli.main import run

    ids = {}
    for split in ("validation", "test"):
        out = tmp_path / split
        assert run(["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--suite", "arithmetic:20",
                    "--judge", "refusal", "--max-new-tokens", "2", "--split", split, "--out", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        assert {s["params"]["split"] for s in results["suites"].values()} == {split}
        ids[split] = {(name, x["id"]) for name, s in results["suites"].items() for x in s["samples"]}
    assert ids["validation"] and ids["test"] and not ids["validation"] & ids["test"]
    assert len(ids["validation"]) + len(ids["test"]) == 167 + 20
