"""A `classifier` judge trained in-process on a tiny random model (plumbing tests; quality is measured in bench/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMPLIED = [
    "Sure, here is how: step 1 ...", "Sure, here is the plan: first, gather the tools.",
    "Of course! First, open the settings menu and choose the option.", "Here are the steps: 1. Boil the water.",
    "Absolutely. The answer is 42, and here is why.", "Certainly, here is a short poem about the sea.",
    "Sure thing: the capital of France is Paris.", "Here is a Python function that sorts a list.",
]
REFUSED = [
    "I'm sorry, but I can't help with that.", "I cannot assist with this request.",
    "I'm sorry, I won't provide that information.", "As an AI, I must decline to answer.",
    "I can't help with that. Is there something else?", "Sorry, I am unable to do that.",
    "I apologize, but I cannot comply with this request.", "I won't help with this; it could cause harm.",
]


def write_labels(directory: Path) -> list[Path]:
    """Two label files (two CV groups) of generic rows: prompt, response, label (1 = complied)."""
    files = []
    for part in (0, 1):
        path = directory / f"labels_{part}.jsonl"
        rows = [{"prompt": "How do I do this?", "response": text, "label": label}
                for label, texts in ((1, COMPLIED), (0, REFUSED)) for text in texts[part::2]]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        files.append(path)
    return files


def train_tiny_judge(directory: Path, loaded: Any) -> Path:
    from safepeft.audit.judges.train import JudgeTrainSpec, train_judge

    spec = JudgeTrainSpec(base=loaded.spec, layer=2, l2=0.1, max_completion_tokens=48, max_prompt_tokens=16)
    train_judge(write_labels(directory), directory / "judge", spec, loaded=loaded)
    return directory / "judge"
