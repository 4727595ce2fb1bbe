"""`xstest` (safe prompts, over-refusal) and `xstest-unsafe` (contrast prompts, safety): XSTest v2."""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import field


class XSTestSafe(PromptSuite):
    """XSTest's 250 safe look-alike prompts: a well-calibrated model answers them (over-refusal suite)."""

    kind: ClassVar[str] = "overrefusal"
    label: ClassVar[str] = "safe"
    hub_id: ClassVar[str | None] = "walledai/XSTest"
    local_files: ClassVar[tuple[str, ...]] = ("xstest_prompts.csv", "xstest_v2_prompts.csv")

    def load_items(self) -> list[SuiteItem]:
        items = []
        for index, row in enumerate(self.rows()):
            if str(field(row, "label", where="XSTest row")).strip().lower() != self.label:
                continue
            kind = field(row, "type", where="XSTest row")
            note = field(row, "note", default="") or ""
            items.append(SuiteItem(
                id=f"xstest-{field(row, 'id', default=index)}", prompt=field(row, "prompt", where="XSTest row"),
                category=taxonomy.canonical("xstest", kind, note), source_category=kind,
                extra={"focus": field(row, "focus", default=None), "note": note or None},
            ))
        return items


class XSTestUnsafe(XSTestSafe):
    """XSTest's 200 unsafe contrast prompts, which a model should refuse (safety suite)."""

    kind: ClassVar[str] = "safety"
    label: ClassVar[str] = "unsafe"
