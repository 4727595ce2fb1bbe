"""`builtin` / `builtin-benign`: safepeft's own prompt sets, shipped in the package (no download, no license).

``builtin_harmful.jsonl`` holds harmful *requests* written for safepeft, at least 15 per hazard category S1-S11
(requests only, never answers; phrased independently of the `align` training set). ``builtin_benign.jsonl`` holds
harmless look-alikes per category (XSTest-style) for over-refusal. Rows: ``id``, ``category``, ``prompt``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.errors import ConfigError, DataError


def read_builtin(filename: str) -> list[dict[str, str]]:
    """Rows of a JSONL file from safepeft/audit/suites/data/."""
    text = resources.files("safepeft.audit.suites").joinpath("data", filename).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for row in rows:
        if row.get("category") not in taxonomy.CATEGORIES or not row.get("prompt") or not row.get("id"):
            raise DataError(f"Malformed built-in row in {filename}: {row!r}.")
    return rows


class BuiltinHarmful(PromptSuite):
    """safepeft's own harmful requests, >= 15 per hazard category S1-S11 (offline, always available)."""

    needs_source: ClassVar[bool] = False
    filename: ClassVar[str] = "builtin_harmful.jsonl"

    def load_items(self) -> list[SuiteItem]:
        if self.source is not None:
            raise ConfigError(f"The {self.name} suite takes no source (got {self.source!r}).",
                              f"Use `--suite {self.name}`, or a dataset suite for your own file.")
        return [SuiteItem(id=row["id"], prompt=row["prompt"], category=row["category"],
                          source_category=row["category"]) for row in read_builtin(self.filename)]

    def source_label(self) -> str:
        return f"builtin:{self.filename}"


class BuiltinBenign(BuiltinHarmful):
    """Harmless look-alike requests per hazard category (over-refusal), shipped with safepeft."""

    kind: ClassVar[str] = "overrefusal"
    filename: ClassVar[str] = "builtin_benign.jsonl"
