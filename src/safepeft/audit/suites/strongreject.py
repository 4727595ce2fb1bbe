"""`strongreject`: StrongREJECT forbidden prompts (full 313 or small 60), six categories."""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import field


class StrongREJECT(PromptSuite):
    """StrongREJECT CSV (category, source, forbidden_prompt) or walledai/StrongREJECT."""

    hub_id: ClassVar[str | None] = "walledai/StrongREJECT"
    local_files: ClassVar[tuple[str, ...]] = ("strongreject_dataset.csv", "strongreject_small_dataset.csv")

    def load_items(self) -> list[SuiteItem]:
        items = []
        for index, row in enumerate(self.rows()):
            category = field(row, "category", where="StrongREJECT row")
            items.append(SuiteItem(
                id=f"strongreject-{index}", prompt=field(row, "forbidden_prompt", "prompt", where="StrongREJECT row"),
                category=taxonomy.canonical("strongreject", category), source_category=category,
                extra={"origin": field(row, "source", default=None)},
            ))
        return items
