"""`train` steps: fine-tune with `safepeft.finetune.trainer.train` on the step's model and data.

A fine-tune entry's ``params`` mix trainer options (max_steps, learning_rate, ...), data options (limit,
prompt_column, ...) and the method's options (rank, alpha, ...); they are split by field name, and a key none of the
three knows is an error before anything runs. Training resumes from its checkpoints in the step directory.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from safepeft.errors import ConfigError
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

ADAPTER = "adapter"


def split_params(method: str, params: dict[str, Any], data: str | None) -> tuple[Any, Any, Any]:
    """(TrainSpec, DataSpec, method spec) from one flat dict; unknown keys and bad values are ConfigErrors."""
    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec

    chosen = FINETUNE_METHODS.get(method)
    groups: dict[type[BaseModel] | None, dict[str, Any]] = {TrainSpec: {}, DataSpec: {}, None: {}}
    for key, value in params.items():
        owner = next((cls for cls in (TrainSpec, DataSpec) if key in cls.model_fields and key != "method"), None)
        groups[owner][key] = value
    unknown = set(groups[None]) - set(chosen.spec_class.model_fields)
    if unknown:
        known = sorted((set(TrainSpec.model_fields) | set(DataSpec.model_fields) | set(chosen.spec_class.model_fields))
                       - {"method", "source"})
        raise ConfigError(f"Unknown fine-tune option(s) {sorted(unknown)} for method {method!r}.",
                          f"Known options: {', '.join(known)}.")
    try:
        train_spec = TrainSpec(method=method, **groups[TrainSpec])
        data_spec = DataSpec(source=data or "", **groups[DataSpec])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid fine-tune options ({problems}).", "See `safepeft train --help`.") from exc
    return train_spec, data_spec, chosen.make_spec(**groups[None])


class TrainStep(StepKind):
    """Fine-tune an adapter (LoRA, IA3, prompt tuning, p-tuning, ...) on the step's model and data."""

    name = "train"
    description = "Fine-tune an adapter with `safepeft train` (resumes from checkpoints)."

    def validate(self, step: Step) -> None:
        split_params(step.params["method"], step.params["params"], step.inputs.get("data"))

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.finetune.dataset import load_train_data
        from safepeft.finetune.trainer import train
        from safepeft.models.loader import load_model

        train_spec, data_spec, method_spec = split_params(ctx.params["method"], ctx.params["params"],
                                                          ctx.require("data"))
        loaded = load_model(ctx.require("model"), device=ctx.load_device)
        data = load_train_data(data_spec, loaded.tokenizer, train_spec.max_length)
        result = train(loaded, data, train_spec, method_spec, ctx.out_dir / ADAPTER, resume=True)
        return {"artifact": ctx.relative(result.out_dir), "steps": result.record.steps,
                "final_loss": result.record.final_loss, "skipped_rows": len(data.skipped)}


STEP = TrainStep()
