"""The audit's built-in harmful prompts must be disjoint from the `align` training set (else an aligned model would
be scored on prompts it was trained to refuse), and the shipped data must hold requests and refusals only."""

import json
import re
from importlib import resources


def _rows(package: str, name: str) -> list[dict]:
    text = resources.files(package).joinpath(*name.split("/")).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def _words(text: str) -> set[str]:
    return set(_norm(text).split())


def _train_prompts() -> list[str]:
    rows = _rows("safepeft.finetune", "data/safety.jsonl")
    return [m["content"] for row in rows if row.get("kind") == "harmful"
            for m in row["messages"] if m["role"] == "user"]


def test_audit_builtin_is_disjoint_from_align_training_set():
    train = _train_prompts()
    audit = [row["prompt"] for row in _rows("safepeft.audit.suites", "data/builtin_harmful.jsonl")]
    assert len(train) > 50 and len(audit) >= 165
    assert not {_norm(p) for p in train} & {_norm(p) for p in audit}, "identical prompts in train and audit sets"
    # Near-duplicates count too: no audit prompt may share 80% of its words with a training prompt.
    train_words = [_words(p) for p in train]
    for prompt in audit:
        words = _words(prompt)
        overlap = max(len(words & other) / max(len(words | other), 1) for other in train_words)
        assert overlap < 0.8, f"audit prompt too close to a training prompt: {prompt!r}"


def test_align_heldout_is_disjoint_from_training_set():
    train = {_norm(p) for p in _train_prompts()}
    heldout = [row["prompt"] for row in _rows("safepeft.finetune", "data/safety_heldout.jsonl")]
    assert heldout and not train & {_norm(p) for p in heldout}
