"""Shared behaviour of the methods that are plain PEFT configs: wrap with get_peft_model, save/load PEFT dirs."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

from safepeft.finetune.base import FinetuneMethod, MethodSpec, PrepareContext


class PeftSpec(MethodSpec):
    """A method spec that maps onto one PEFT config."""

    @abstractmethod
    def to_peft(self, model_config: Any, tokenizer: Any = None) -> Any:
        """Build the ``peft`` config for a base model with ``model_config`` (defaults come from targets.py)."""


class PeftMethod(FinetuneMethod):
    """A method whose output is a standard PEFT adapter directory (adapter_config.json + safetensors)."""

    def prepare(self, ctx: PrepareContext, spec: MethodSpec) -> Any:
        import torch
        from peft import get_peft_model

        assert isinstance(spec, PeftSpec)
        base = ctx.loaded.model
        for param in base.parameters():
            param.requires_grad_(False)
        torch.manual_seed(ctx.seed)  # adapter init (LoRA A, prompt encoders) depends only on the seed
        model = get_peft_model(base, spec.to_peft(base.config, ctx.loaded.tokenizer))
        self.initialize(model, ctx, spec)
        return model

    def initialize(self, model: Any, ctx: PrepareContext, spec: MethodSpec) -> None:
        """Hook for custom initialisation after wrapping (default: PEFT's own)."""

    def save(self, model: Any, out_dir: Path, ctx: PrepareContext, spec: MethodSpec) -> None:
        model.save_pretrained(str(out_dir), safe_serialization=True)

    def load(self, base_model: Any, out_dir: Path) -> Any:
        from peft import PeftModel

        from safepeft.models.safety import check_adapter_dir

        check_adapter_dir(out_dir)  # never lets PEFT fall back to unpickling adapter_model.bin
        return PeftModel.from_pretrained(base_model, str(out_dir)).eval()
