"""IA3 (Liu et al. 2022): learned per-channel rescaling of keys, values and the MLP's down-projection input."""

from __future__ import annotations

from typing import Any

from safepeft.errors import ConfigError
from safepeft.finetune.peft_method import PeftMethod, PeftSpec
from safepeft.finetune.targets import default_targets


class IA3Spec(PeftSpec):
    target_modules: list[str] | None = None
    """Modules whose activations are rescaled; default from the per-architecture table (llama: k, v, down_proj)."""
    feedforward_modules: list[str] | None = None
    """Subset of target_modules that are feed-forward layers (scaled on their input); default from the table."""

    def to_peft(self, model_config: Any, tokenizer: Any = None) -> Any:
        from peft import IA3Config, TaskType

        targets = self.target_modules or default_targets("ia3", model_config)
        feedforward = self.feedforward_modules
        if feedforward is None:  # the table's feed-forward modules, restricted to what is targeted
            feedforward = [m for m in default_targets("ia3-feedforward", model_config) if m in targets]
        if not set(feedforward) <= set(targets):
            raise ConfigError(
                f"IA3 feedforward_modules {feedforward} are not all in target_modules {targets}.",
                "Feed-forward modules must be a subset of the target modules.",
            )
        return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=feedforward)


class IA3Method(PeftMethod):
    """IA3: learned rescaling vectors on keys, values and feed-forward inputs (standard PEFT adapter)."""

    name = "ia3"
    description = "IA3: learned rescaling vectors on keys, values and feed-forward inputs (standard PEFT adapter)."
    default_learning_rate = 3e-3
    spec_class = IA3Spec
    writes = "IA3"


METHOD = IA3Method()
