"""Fine-tuning stage: PEFT methods behind one registry, a resumable SFT trainer, built-in data, `align`.

Every method is one module exposing ``METHOD`` (a ``FinetuneMethod``, see ``finetune/base.py``), registered lazily
here so that ``safepeft list methods`` does not import torch or peft.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.finetune.base import FinetuneMethod

FINETUNE_METHODS: Registry[FinetuneMethod] = Registry("method", base="safepeft.finetune.base:FinetuneMethod",
                                                      holds="instances")
FINETUNE_METHODS.register("lora", "safepeft.finetune.lora:METHOD")
FINETUNE_METHODS.register("ia3", "safepeft.finetune.ia3:METHOD")
FINETUNE_METHODS.register("prompt-tuning", "safepeft.finetune.prompt_tuning:METHOD")
FINETUNE_METHODS.register("p-tuning", "safepeft.finetune.p_tuning:METHOD")
FINETUNE_METHODS.register("salora", "safepeft.finetune.salora.method:METHOD")
