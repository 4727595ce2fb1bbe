"""`quantize` steps: `safepeft.quantize.run.quantize_model` on the variant's model (+ adapter, merged first)."""

from __future__ import annotations

from typing import Any

from safepeft.errors import ConfigError
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

MODEL = "model"


class QuantizeStep(StepKind):
    """Quantize a variant (adapter merged) into a directory `load_model` reads."""

    name = "quantize"
    description = "Quantize a variant with `safepeft quantize` (int8-dynamic, int8/int4, GGUF, bitsandbytes)."

    def validate(self, step: Step) -> None:
        from safepeft.quantize import QUANTIZERS

        QUANTIZERS.get(step.params["scheme"])
        if step.params["params"]:
            raise ConfigError(f"Quantization schemes take no options, got {sorted(step.params['params'])} for "
                              f"{step.params['scheme']!r}.", "Remove `params` from the quantize entry.")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.quantize.run import quantize_model

        out = ctx.out_dir / MODEL
        manifest = quantize_model(ctx.require("model"), ctx.params["scheme"], out, adapter=ctx.input("adapter"),
                                  device=ctx.load_device, overwrite=True)
        return {"artifact": ctx.relative(out), "bits": manifest["bits"], "size": manifest["size"]}


STEP = QuantizeStep()
