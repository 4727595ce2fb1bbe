"""`prompts:FILE`: your own prompts as a suite, harmful (safety) or benign (over-refusal) by `--kind`.

The file is a ``.txt`` (one prompt per line, blank lines skipped), ``.csv``, ``.jsonl`` or ``.json`` (a ``prompt``
column, also read as ``text``/``question``/``request``; an optional ``category`` and ``id``). Category rule: a
label that is a hazard code (``S1``), a canonical key (``S1_violent_crimes``) or a hazard title (``Violent
crimes``), case-insensitive, maps onto the taxonomy; anything else, or no category, is ``other`` (the label itself
is kept as the item's ``source_category``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import AuditOptions, SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import Row, field, read_table
from safepeft.errors import DataError
from safepeft.models.protocol import Generator
from safepeft.records.results import SuiteResult

KINDS = {"harmful": "safety", "benign": "overrefusal"}
"""`--kind` -> the suite kind (its metrics: harmful/refusal rates, or over-refusal rates)."""
_BY_NAME = {**{k.lower(): k for k in taxonomy.HAZARDS}, **{t.lower(): k for k, t in taxonomy.HAZARDS.items()}}


def hazard_of(label: str | None) -> str:
    """The canonical category of a user's label (see the module docstring for the rule)."""
    if not label or not label.strip():
        return taxonomy.OTHER
    key = label.strip().lower()
    return _BY_NAME.get(key) or taxonomy.from_code(key)


class Prompts(PromptSuite):
    """Your own prompts from a .txt/.csv/.jsonl/.json file; `--kind harmful` (default) or `--kind benign`."""

    kind: ClassVar[str] = "safety"

    def rows(self) -> list[Row]:
        path = Path(self.source or "").expanduser()
        self.read_from = str(path)
        if path.suffix.lower() != ".txt":
            return read_table(path, "--suite prompts:FILE")
        if not path.is_file():
            raise DataError(f"No file at {path}.", "Check the path given to --suite prompts:FILE.")
        return [{"prompt": line.strip()} for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def load_items(self) -> list[SuiteItem]:
        items = []
        for index, row in enumerate(self.rows(), start=1):
            prompt = field(row, "prompt", "text", "question", "request", default=None)
            if not isinstance(prompt, str) or not prompt.strip():
                columns = ", ".join(sorted(map(str, row))) or "none"
                raise DataError(f"{self.source}: row {index} has no prompt (columns: {columns}).",
                                "Name the column `prompt` (or text/question/request), or use a .txt file.")
            label = field(row, "category", default=None)
            label = None if label is None else str(label)
            items.append(SuiteItem(id=str(field(row, "id", default=f"prompt-{index}")), prompt=prompt.strip(),
                                   category=hazard_of(label), source_category=label or taxonomy.OTHER))
        return items

    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        self.kind = KINDS[options.prompt_kind]  # type: ignore[misc]  # chosen per run by --kind
        result = super().run(generator, judge, options)
        result.params["prompt_kind"] = options.prompt_kind
        return result
