"""`jailbreakbench` / `jailbreakbench-benign`: JBB-Behaviors' 100 harmful behaviors and their 100 benign twins.

Twins share the index-based id (``jbb-<index>``) and the category, so the report can pair refusal of a harmful
behavior with over-refusal of its harmless look-alike.
"""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import field


class JailbreakBenchHarmful(PromptSuite):
    """JBB-Behaviors harmful split (harmful-behaviors.csv, or JailbreakBench/JBB-Behaviors on the hub)."""

    hub_id: ClassVar[str | None] = "JailbreakBench/JBB-Behaviors"
    hub_config: ClassVar[str | None] = "behaviors"
    hub_split: ClassVar[str | None] = "harmful"
    local_files: ClassVar[tuple[str, ...]] = ("harmful-behaviors.csv",)

    def load_items(self) -> list[SuiteItem]:
        items = []
        for position, row in enumerate(self.rows()):
            index = field(row, "index", "", default=position)
            category = field(row, "Category", where="JailbreakBench row")
            behavior = field(row, "Behavior", default="")
            items.append(SuiteItem(
                id=f"jbb-{index}", prompt=field(row, "Goal", where="JailbreakBench row"),
                category=taxonomy.canonical("jailbreakbench", category, behavior),
                source_category=f"{category}/{behavior}" if behavior else category,
            ))
        return items


class JailbreakBenchBenign(JailbreakBenchHarmful):
    """JBB-Behaviors benign twins (benign-behaviors.csv): over-refusal on topic-matched harmless requests."""

    kind: ClassVar[str] = "overrefusal"
    hub_split: ClassVar[str | None] = "benign"
    local_files: ClassVar[tuple[str, ...]] = ("benign-behaviors.csv",)
