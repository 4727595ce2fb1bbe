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


class RepairInfo(ABC):
    """What every registered repair declares, whichever way it repairs (`RepairMethod` or `WeightRepair`)."""

    name: ClassVar[str]
    """Registry name."""
    paper: ClassVar[str]
    """Where the method comes from."""
    spec_class: ClassVar[type[Spec]]
    """Pydantic spec of the method's parameters (all have defaults)."""
    inputs: ClassVar[tuple[str, ...]] = ()
    """Extra inputs the method needs (e.g. SafeMERGE's safety_adapter): keyword arguments of `plan`, or
    `job.extras` of `run`."""
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    """Extra inputs the method may take."""
    version: ClassVar[int] = 1
    """Bumped when the method's output for the same inputs changes, so study steps that ran it are recomputed."""


class RepairMethod(RepairInfo):
    """A post-hoc adapter repair. Subclasses set the class attributes and implement `plan`."""

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


@dataclass
class RepairJob:
    """Everything a weight-writing repair reads: both models as streams, the adapter, the output and extra inputs."""

    base: Any
    """WeightSource of the unaligned base."""
    aligned: Any
    """WeightSource of the aligned model the adapter was trained on."""
    adapter: LoraAdapter
    """The fine-tuned LoRA adapter."""
    out: Any
    """Output directory (Path); written atomically by the method."""
    base_name: str = "base"
    aligned_name: str = "aligned"
    aligned_spec: str | None = None
    """The aligned model's spec when it was given as one (needed to run it, e.g. Safe Delta's curvature)."""
    extras: dict[str, Any] | None = None
    """Method-specific inputs named in the method's `inputs` (e.g. SafeMERGE's safety adapter)."""
    progress: bool = True
    device: str = "cpu"
    """Where the per-module math runs (resolved: cpu, cuda, cuda:N); `base`/`aligned` already read onto it."""


@dataclass
class RepairOutcome:
    """What a weight-writing repair reports back (the driver wraps it in safepeft_repair.json)."""

    output: str
    """adapter (a PEFT LoRA directory) or model (a full model directory)."""
    modules: list[ModuleDecision]
    summary: dict[str, Any]


class WeightRepair(RepairInfo):
    """A repair that writes its own output (a full model directory, or an adapter it builds), streaming weights.

    `RepairMethod.plan` edits LoRA factors in memory; methods that need every weight of the model (RESTA adds the
    safety vector everywhere, Safe Delta keeps single delta entries) stream them through `run` instead.
    """

    @abstractmethod
    def run(self, job: RepairJob, spec: Any, record: Any) -> RepairOutcome:
        """Write the repaired artifact to job.out. `record(outcome) -> str` renders safepeft_repair.json, which the
        method writes inside the same atomic directory."""
