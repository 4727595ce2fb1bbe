"""`repair` steps: SafeLoRA / SPLoRA with `safepeft.repair.repair_adapter` (base, aligned reference, adapter)."""

from __future__ import annotations

from typing import Any

from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

ADAPTER = "adapter"


class RepairStep(StepKind):
    """Repair a trained LoRA adapter against the model's aligned reference."""

    name = "repair"
    description = "Repair a LoRA adapter with `safepeft repair` (SafeLoRA projection, SPLoRA pruning)."

    def validate(self, step: Step) -> None:
        from safepeft.repair.run import build_spec

        build_spec(step.params["method"], step.params["params"])

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.repair.run import build_spec, repair_adapter

        method = ctx.params["method"]
        out = ctx.out_dir / ADAPTER
        report = repair_adapter(method, base=ctx.require("base"), aligned=ctx.require("aligned"),
                                adapter=ctx.require("adapter"), out=out,
                                spec=build_spec(method, ctx.params["params"]), overwrite=True, progress=False)
        acted = sum(m.action in ("projected", "pruned") for m in report.modules)
        return {"artifact": ctx.relative(out), "modules": len(report.modules), "changed": acted}


STEP = RepairStep()
