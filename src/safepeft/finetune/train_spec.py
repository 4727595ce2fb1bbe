"""The training loop's options (``TrainSpec``), apart from the loop itself so that reading them needs no torch: the
CLI builds its `train` and `align` flags from these fields at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from safepeft.records.base import Spec

__all__ = ["TrainSpec"]


class TrainSpec(Spec):
    method: str = "lora"
    """Fine-tuning method (see `safepeft list methods`)."""
    max_steps: int | None = Field(None, ge=1)
    """Optimizer steps to run; overrides epochs."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the data when max_steps is not set."""
    learning_rate: float | None = Field(None, gt=0)
    """Peak learning rate; default per method (LoRA 2e-4, IA3 3e-3, prompt tuning 3e-2, p-tuning 1e-3)."""
    batch_size: int = Field(4, ge=1)
    """Conversations per micro-batch."""
    grad_accum: int = Field(1, ge=1)
    """Micro-batches per optimizer step."""
    max_length: int = Field(512, ge=8)
    """Longest allowed conversation in tokens; longer rows are malformed."""
    seed: int = 0
    """Seed of adapter init, data order and dropout."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up steps."""
    schedule: Literal["constant", "linear", "cosine"] = "linear"
    """Learning-rate decay after warm-up."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Gradient clipping norm (None: no clipping)."""
    checkpoint_every: int = Field(50, ge=1)
    """Write a resumable checkpoint every N steps."""
    eval_steps: int = Field(50, ge=1)
    """With eval data: compute its loss every N steps and after the last step."""
    log_to: Literal["tensorboard", "wandb"] | None = None
    """Also log train loss, learning rate and eval loss to TensorBoard or Weights & Biases (offline by default)."""
    load_in_4bit: bool = False
    """QLoRA: load the frozen base in 4-bit NF4 with bitsandbytes and train LoRA on it (needs a CUDA GPU)."""

    @field_validator("load_in_4bit")
    @classmethod
    def _qlora_is_lora(cls, value: bool, info: ValidationInfo) -> bool:
        method = info.data.get("method")
        if value and method != "lora":
            raise ValueError(f"QLoRA trains LoRA adapters only, not method {method!r}; use --method lora")
        return value
