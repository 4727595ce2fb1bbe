"""The contract every repair method fulfils: measured modules + adapter + spec -> a plan (new tensors and config).

Methods are pure over in-memory data: the driver (`repair.run`) streams the weights, measures the modules, calls
`plan` once and writes the result, so methods never see files and can be tested on synthetic modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from safepeft.records.base import Spec
from safepeft.repair.adapter import LoraAdapter
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.report import ModuleDecision


@dataclass
class RepairPlan:
    """What to write: the adapter's tensors and config after repair, plus the per-module record."""

    tensors: dict[str, Any]
    config: dict[str, Any]
    modules: list[ModuleDecision]
    summary: dict[str, Any]


class RepairMethod(ABC):
    """A post-hoc adapter repair. Subclasses set the class attributes and implement `plan`."""

    name: ClassVar[str]
    """Registry name."""
    paper: ClassVar[str]
    """Where the method comes from."""
    spec_type: ClassVar[type[Spec]]
    """Pydantic spec of the method's parameters (all have defaults)."""

    @abstractmethod
    def plan(self, alignments: list[ModuleAlignment], adapter: LoraAdapter, spec: Any) -> RepairPlan:
        """Decide and apply the repair in memory; must not modify `adapter`."""


def module_record(alignment: ModuleAlignment, score: float | None, action: str,
                  details: dict[str, float | str | None]) -> ModuleDecision:
    """The per-module entry of safepeft_repair.json."""
    reason = alignment.skip_reason
    return ModuleDecision(
        name=alignment.name, shape=alignment.shape, rank=alignment.module.rank, score=score,
        action="skipped" if reason else action, reason=reason,
        details={"v_norm": alignment.geometry.v_norm, **details},
    )


def finite(value: float | None) -> float | None:
    """JSON-safe float: NaN/inf become None."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)
