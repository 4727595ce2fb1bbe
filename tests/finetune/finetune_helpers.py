"""Helpers shared by the fine-tuning tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

SHORT_ROWS = [
    {"prompt": "hi", "response": "hello!"},
    {"prompt": "2+2?", "response": "4."},
    {"messages": [{"role": "user", "content": "name?"}, {"role": "assistant", "content": "Tiny."}]},
    {"prompt": "sky?", "response": "blue."},
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
