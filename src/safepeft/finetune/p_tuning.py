"""P-tuning (Liu et al. 2021): virtual-token embeddings produced by a small trainable encoder (MLP or LSTM).

The saved adapter holds the encoder's output embeddings (PEFT's format), so inference needs no encoder.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from safepeft.finetune.peft_method import PeftMethod, PeftSpec


class PTuningSpec(PeftSpec):
    num_virtual_tokens: int = Field(20, ge=1)
    """Number of virtual tokens prepended to the input."""
    encoder_hidden_size: int = Field(128, ge=1)
    """Hidden size of the prompt encoder that produces the virtual-token embeddings."""
    encoder_type: Literal["MLP", "LSTM"] = "MLP"
    """Prompt-encoder architecture (PEFT's encoder_reparameterization_type)."""
    encoder_num_layers: int = Field(2, ge=1)
    """Layers of the LSTM encoder (PEFT's MLP encoder always has two)."""
    encoder_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout inside the prompt encoder."""

    def to_peft(self, model_config: Any, tokenizer: Any = None) -> Any:
        from peft import PromptEncoderConfig, TaskType

        return PromptEncoderConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=self.num_virtual_tokens,
            encoder_hidden_size=self.encoder_hidden_size, encoder_reparameterization_type=self.encoder_type,
            encoder_num_layers=self.encoder_num_layers, encoder_dropout=self.encoder_dropout,
        )


class PTuningMethod(PeftMethod):
    """P-tuning: virtual tokens produced by a trainable MLP/LSTM prompt encoder (standard PEFT adapter)."""

    name = "p-tuning"
    description = "P-tuning: virtual tokens produced by a trainable MLP/LSTM prompt encoder (standard PEFT adapter)."
    default_learning_rate = 1e-3
    spec_class = PTuningSpec
    writes = "P_TUNING"


METHOD = PTuningMethod()
