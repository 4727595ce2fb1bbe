"""`advbench`: AdvBench harmful behaviors (Zou et al. 2023). 520 requests without categories (all `other`)."""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import field


class AdvBench(PromptSuite):
    """AdvBench harmful_behaviors.csv (`goal` column) or the walledai/AdvBench hub copy."""

    hub_id: ClassVar[str | None] = "walledai/AdvBench"
    local_files: ClassVar[tuple[str, ...]] = ("harmful_behaviors.csv",)

    def load_items(self) -> list[SuiteItem]:
        return [
            SuiteItem(id=f"advbench-{index}", prompt=field(row, "goal", "prompt", where="AdvBench row"),
                      category=taxonomy.canonical("advbench", ""), source_category="uncategorized")
            for index, row in enumerate(self.rows())
        ]
