"""`ailuminate`: MLCommons AILuminate v1.0 prompt sets (demo or practice), 12 hazards mapped almost 1:1."""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import field


class AILuminate(PromptSuite):
    """AILuminate prompt-set CSV (release_prompt_id, prompt_text, hazard, persona, locale); any locale."""

    # The prompt sets are published on GitHub (mlcommons/ailuminate), not as a hub dataset: a path is required.
    local_files: ClassVar[tuple[str, ...]] = ("*en_us_prompt_set_release.csv", "*prompt_set*.csv")

    def load_items(self) -> list[SuiteItem]:
        items = []
        for row in self.rows():
            hazard = field(row, "hazard", where="AILuminate row")
            items.append(SuiteItem(
                id=field(row, "release_prompt_id", "prompt_id"), prompt=field(row, "prompt_text", "prompt"),
                category=taxonomy.canonical("ailuminate", hazard), source_category=hazard,
                extra={"persona": field(row, "persona", default=None), "locale": field(row, "locale", default=None)},
            ))
        return items
