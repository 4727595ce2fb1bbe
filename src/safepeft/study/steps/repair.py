"""`repair` steps: SafeLoRA / SPLoRA with `safepeft.repair.repair_adapter` (base, aligned reference, adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

ADAPTER = "adapter"


class RepairStep(StepKind):
    """Repair a trained LoRA adapter against the model's aligned reference."""

    name = "repair"
    description = "Repair a LoRA adapter with `safepeft repair` (SafeLoRA, SPLoRA, RESTA, SafeMERGE, Safe Delta)."

    def validate(self, step: Step) -> None:
        from safepeft.repair.run import build_spec

        build_spec(step.params["method"], step.params["params"])

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.repair.run import build_spec, repair_adapter

        method = ctx.params["method"]
        out = ctx.out_dir / ADAPTER
        report = repair_adapter(method, base=ctx.require("base"), aligned=ctx.require("aligned"),
                                adapter=ctx.require("adapter"), out=out,
                                spec=build_spec(method, ctx.params["params"]), overwrite=True,
                                inputs=repair_inputs(method, ctx), device=ctx.load_device)
        acted = sum(m.action not in ("kept", "skipped") for m in report.modules)
        return {"artifact": ctx.relative(out), "modules": len(report.modules), "changed": acted}


def repair_inputs(method: str, ctx: StepContext) -> dict[str, Any] | None:
    """The extra inputs a method declares: builtin:safety chats (Safe Delta), a safety LoRA trained on the aligned
    model into this step's directory (SafeMERGE; resumed if the step is re-run)."""
    from safepeft.finetune.safety_lora import safety_conversations, train_safety_adapter
    from safepeft.repair import REPAIR_METHODS

    method_cls = REPAIR_METHODS.get(method)
    wanted = set(method_cls.inputs) | set(method_cls.optional_inputs)
    inputs: dict[str, Any] = {}
    if "safety_conversations" in wanted:
        inputs["safety_conversations"] = safety_conversations()
    if "safety_adapter" in wanted:
        inputs["safety_adapter"] = shared_safety_adapter(ctx, train_safety_adapter)
    return inputs or None


def shared_safety_adapter(ctx: StepContext, train: Any) -> Any:
    """One safety LoRA per aligned model and adapter shape in the run directory, shared by every SafeMERGE step
    (a grid of merge weights needs it once); a lock makes parallel steps wait for the first to train it."""
    import json

    from safepeft.store.lock import run_dir_lock
    from safepeft.store.sqlite import request_key

    aligned, adapter = ctx.require("aligned"), ctx.require("adapter")
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    shape = {k: config.get(k) for k in ("r", "lora_alpha", "target_modules")}
    out = ctx.run_dir / "shared" / f"safety-lora-{request_key('safety-lora', aligned, shape)[:16]}"
    with run_dir_lock(out):
        return train(aligned, adapter, out / "adapter", device=ctx.load_device)


STEP = RepairStep()
