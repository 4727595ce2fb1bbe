"""`align` steps: build a model's aligned reference with `safepeft.finetune.align.align` (LoRA on refusal data,
merged). ``params`` override align's defaults: trainer options (max_steps, learning_rate, ...) and LoRA options
(rank, alpha, target_modules, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from safepeft.errors import ConfigError
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

MODEL = "model"


def specs(params: dict[str, Any]) -> tuple[Any, Any]:
    """(TrainSpec, LoraSpec): align's defaults updated with ``params``."""
    from safepeft.finetune.align import DEFAULT_LORA, DEFAULT_TRAIN

    train_keys = set(type(DEFAULT_TRAIN).model_fields) - {"method"}
    unknown = set(params) - train_keys - set(type(DEFAULT_LORA).model_fields)
    if unknown:
        raise ConfigError(f"Unknown align option(s) {sorted(unknown)}.",
                          f"Known: {', '.join(sorted(train_keys | set(type(DEFAULT_LORA).model_fields)))}.")
    try:
        train = DEFAULT_TRAIN.model_validate({**DEFAULT_TRAIN.model_dump(),
                                              **{k: v for k, v in params.items() if k in train_keys}})
        lora = DEFAULT_LORA.model_validate({**DEFAULT_LORA.model_dump(),
                                            **{k: v for k, v in params.items() if k not in train_keys}})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid align options ({problems}).", "See `safepeft align --help`.") from exc
    return train, lora


class AlignStep(StepKind):
    """Safety-tune a model into the aligned reference that repairs compare against."""

    name = "align"
    description = "Build the aligned reference with `safepeft align` (LoRA on refusal data, merged)."

    def validate(self, step: Step) -> None:
        specs(step.params["params"])

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.finetune.align import align
        from safepeft.finetune.rows import DataSpec
        from safepeft.models.loader import load_model

        train, lora = specs(ctx.params["params"])
        data = DataSpec(source=ctx.params["data"]) if ctx.params.get("data") else None
        loaded = load_model(ctx.require("model"), device=ctx.load_device)
        result = align(loaded, ctx.out_dir / MODEL, data=data, train_spec=train, lora=lora, resume=True)
        return {"artifact": ctx.relative(result.out_dir), "final_loss": result.record.final_loss}


STEP = AlignStep()
