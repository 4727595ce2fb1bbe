"""The step-kind contract and the STEP_KINDS registry.

A step kind turns one DAG step into a call of its stage's library function. It gets a ``StepContext``: its
parameters, its own output directory (stable across attempts, so a stage's own resume - training checkpoints, the
audit's generation store - carries over a retry), and the artifacts of the steps it depends on. It returns a small
JSON-able dict of outputs whose ``artifact`` entry is the path (relative to the run directory) of what downstream
steps consume: a model directory (align, quantize), an adapter directory (train, repair) or results.json (audit).

Only kinds whose stage exists are registered; the contract test covers every entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from safepeft.errors import ConfigError
from safepeft.registry import Registry
from safepeft.study.dag import Step

STEP_KINDS: Registry = Registry("step kind", list_command="safepeft list step-kinds")
STEP_KINDS.register("align", "safepeft.study.steps.align:STEP")
STEP_KINDS.register("contaminate", "safepeft.study.steps.contaminate:STEP")
STEP_KINDS.register("train", "safepeft.study.steps.train:STEP")
STEP_KINDS.register("repair", "safepeft.study.steps.repair:STEP")
STEP_KINDS.register("quantize", "safepeft.study.steps.quantize:STEP")
STEP_KINDS.register("audit", "safepeft.study.steps.audit:STEP")
STEP_KINDS.register("select", "safepeft.study.steps.select:STEP")


@dataclass
class StepContext:
    """What a running step may use."""

    step: Step
    run_dir: Path
    out_dir: Path
    """This step's directory: ``run_dir/steps/<kind>/<key prefix>``; it already exists."""
    dep_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Role -> outputs of the step filling that role."""
    attempt: int = 1
    device: str | None = None
    """The device every step runs on (`study run --device`), or None: auto for loads, the study's `target.device`
    for audits. It is not a step parameter, so it is in no step key: the same study on another device reuses the
    steps it finished."""

    @property
    def params(self) -> dict[str, Any]:
        return self.step.params

    @property
    def load_device(self) -> str:
        """The device a step loads its model on: the override, else auto."""
        return self.device or "auto"

    def input(self, role: str) -> str | None:
        """The artifact filling ``role``: a dependency's output path, or an external spec / path; None if absent."""
        if role in self.dep_outputs:
            return str(self.run_dir / self.dep_outputs[role]["artifact"])
        return self.step.inputs.get(role)

    def require(self, role: str) -> str:
        value = self.input(role)
        if value is None:
            raise ConfigError(f"Step {self.step.name!r} has no {role!r} input.", "This is a bug in the study DAG.")
        return value

    def relative(self, path: Path) -> str:
        """A path inside the run directory as stored in outputs (so a run directory can be moved)."""
        return str(Path(path).resolve().relative_to(self.run_dir.resolve()))


class StepKind(ABC):
    """One kind of study step (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]
    resources: ClassVar[dict[str, float]] = {"num_cpus": 1.0, "num_gpus": 0.0}
    """Default Ray resources of one step; a study's `resources.<kind>` overrides them."""

    def validate(self, step: Step) -> None:  # noqa: B027 - optional hook, most kinds accept any params
        """Check the step's parameters before anything runs (raise ConfigError); default: accept."""

    @abstractmethod
    def run(self, ctx: StepContext) -> dict[str, Any]:
        """Do the work into ``ctx.out_dir`` and return outputs with an ``artifact`` path (see module docstring)."""
