"""LoRA (Hu et al. 2021): low-rank updates ΔW = (alpha/r)·B·A on the target linear layers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from safepeft.finetune.peft_method import PeftMethod, PeftSpec
from safepeft.finetune.targets import default_targets


class LoraSpec(PeftSpec):
    rank: int = Field(8, ge=1)
    """LoRA rank r."""
    alpha: float = Field(16.0, gt=0)
    """Scaling numerator: the update is multiplied by alpha / rank."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA branch input."""
    target_modules: list[str] | None = None
    """Module names to adapt; default from the per-architecture table (llama: q_proj, v_proj); ["all-linear"]
    selects every linear layer except the output head (PEFT's shorthand)."""

    def to_peft(self, model_config: Any, tokenizer: Any = None) -> Any:
        from peft import LoraConfig, TaskType

        targets: list[str] | str = self.target_modules or default_targets("lora", model_config)
        if targets == ["all-linear"]:
            targets = "all-linear"
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
            target_modules=targets, bias="none",
        )


class LoraMethod(PeftMethod):
    """LoRA: trainable low-rank updates on attention projections (standard PEFT adapter)."""

    name = "lora"
    description = "LoRA: trainable low-rank updates on target linear layers (standard PEFT adapter)."
    spec_class = LoraSpec
    writes = "LORA"


METHOD = LoraMethod()
