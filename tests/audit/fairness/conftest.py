"""Fixtures for the fairness tests: BBQ counts as documented in ../shared/data/bbq/SOURCE.md."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="session")
def bbq_dir(shared_data):
    return shared_data / "bbq"


@pytest.fixture(scope="session")
def source_counts(bbq_dir) -> dict[str, int]:
    """Rows per category: the files table for the 6 included files, the paper counts for the missing ones."""
    text = (bbq_dir / "SOURCE.md").read_text(encoding="utf-8")
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| (\w+)\.jsonl \| \d+ \| (\d+) \|", text, re.M)}
    missing = {m.group(1): int(m.group(2).replace(",", ""))
               for m in re.finditer(r"`data/(\w+)\.jsonl` \(([\d,]+)", text)}
    counts.update({k: v for k, v in missing.items() if "_x_" not in k})
    assert len(counts) == 9, counts
    return counts
