"""Prompt tuning (Lester et al. 2021): trainable virtual-token embeddings prepended to every input.

Initialisation: with ``init_text`` the virtual tokens start as that text's token embeddings (repeated or cut to
``num_virtual_tokens``), as in PEFT's TEXT init; we do it from the loaded tokenizer instead of PEFT's
``tokenizer_name_or_path`` so that models without a hub name (embedded GGUF, in-memory) work. Without it they
start as embeddings of randomly sampled vocabulary tokens (PEFT's SAMPLE_VOCAB) rather than PEFT's default N(0, 1)
RANDOM init, whose scale is far from real embeddings and trains poorly on small models.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from safepeft.errors import ConfigError
from safepeft.finetune.base import MethodSpec, PrepareContext
from safepeft.finetune.peft_method import PeftMethod, PeftSpec


class PromptTuningSpec(PeftSpec):
    num_virtual_tokens: int = Field(20, ge=1)
    """Number of trainable virtual tokens prepended to the input."""
    init_text: str | None = None
    """Text whose token embeddings initialise the virtual tokens; default: embeddings of random vocabulary tokens."""

    def to_peft(self, model_config: Any, tokenizer: Any = None) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        init = PromptTuningInit.RANDOM if self.init_text else PromptTuningInit.SAMPLE_VOCAB
        return PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=self.num_virtual_tokens, prompt_tuning_init=init
        )


class PromptTuningMethod(PeftMethod):
    """Prompt tuning: trainable virtual-token embeddings prepended to the input (standard PEFT adapter)."""

    name = "prompt-tuning"
    description = "Prompt tuning: trainable virtual-token embeddings prepended to the input (standard PEFT adapter)."
    default_learning_rate = 3e-2
    spec_class = PromptTuningSpec
    writes = "PROMPT_TUNING"

    def initialize(self, model: Any, ctx: PrepareContext, spec: MethodSpec) -> None:
        import torch

        assert isinstance(spec, PromptTuningSpec)
        if not spec.init_text:
            return
        ids = ctx.loaded.tokenizer(spec.init_text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ConfigError("Prompt-tuning init_text tokenizes to nothing.", "Pass a non-empty --init-text.")
        ids = (ids * (spec.num_virtual_tokens // len(ids) + 1))[: spec.num_virtual_tokens]
        embedding = model.prompt_encoder[model.active_adapter].embedding
        words = model.get_input_embeddings()
        with torch.no_grad():
            embedding.weight.copy_(words(torch.tensor(ids, device=words.weight.device)).float())


METHOD = PromptTuningMethod()
