"""`harmbench`: HarmBench text behaviors (standard, contextual, copyright), by semantic category.

Contextual behaviors are sent as HarmBench's DirectRequest baseline does: ``context + "\\n\\n---\\n\\n" + behavior``;
judges read the behavior with the context passed separately. Copyright behaviors are kept (category S7), but
HarmBench's hash-based copyright scoring is not reproduced: they are judged like any other request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import Row, field, load_hub


class HarmBench(PromptSuite):
    """HarmBench behaviors CSV (Behavior, SemanticCategory, ContextString, BehaviorID) or walledai/HarmBench."""

    hub_id: ClassVar[str | None] = "walledai/HarmBench"
    local_files: ClassVar[tuple[str, ...]] = (
        "harmbench_behaviors_text_all.csv", "harmbench_behaviors_text_test.csv", "harmbench_behaviors_text_val.csv",
    )
    hub_configs: ClassVar[tuple[str, ...]] = ("standard", "contextual", "copyright")

    def source_params(self) -> dict[str, Any]:
        """The file and HarmBench split used (``all``/``test``/``val`` from the file name; hub: every config)."""
        params = super().source_params()
        name = Path(self.read_from or "").stem
        if name.startswith("harmbench_behaviors_text_"):
            params["split"] = name.removeprefix("harmbench_behaviors_text_")
        elif self.read_from is None:
            params |= {"file": f"hub:{self.hub_id}", "split": "+".join(self.hub_configs)}
        return params

    def rows(self) -> list[Row]:
        if self.source is None or self.source == self.hub_id:
            # The hub copy splits functional categories into configs; read them all.
            return [dict(row, functionalcategory=config) for config in self.hub_configs
                    for row in load_hub(self.hub_id or "", config)]
        return super().rows()

    def load_items(self) -> list[SuiteItem]:
        items = []
        for index, row in enumerate(self.rows()):
            behavior = field(row, "Behavior", "prompt", where="HarmBench row")
            semantic = field(row, "SemanticCategory", "category", where="HarmBench row")
            context = field(row, "ContextString", "context", default="") or None
            prompt = behavior if context is None else f"{context}\n\n---\n\n{behavior}"
            functional = field(row, "FunctionalCategory", default="standard")
            items.append(SuiteItem(
                id=field(row, "BehaviorID", default=f"harmbench-{functional}-{index}"), prompt=prompt,
                category=taxonomy.canonical("harmbench", semantic), source_category=semantic, request=behavior,
                context=context, extra={"functional_category": functional},
            ))
        return items
