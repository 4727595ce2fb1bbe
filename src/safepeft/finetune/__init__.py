"""Fine-tuning stage: PEFT methods behind one registry, a resumable SFT trainer, built-in data, `align`.

Every method is one module exposing ``METHOD`` (a ``FinetuneMethod``, see ``finetune/base.py``), registered lazily
here so that ``safepeft list methods`` does not import torch or peft.
"""

from __future__ import annotations

from safepeft.registry import Registry

FINETUNE_METHODS: Registry = Registry("method")
FINETUNE_METHODS.register("lora", "safepeft.finetune.lora:METHOD")
FINETUNE_METHODS.register("ia3", "safepeft.finetune.ia3:METHOD")
FINETUNE_METHODS.register("prompt-tuning", "safepeft.finetune.prompt_tuning:METHOD")
FINETUNE_METHODS.register("p-tuning", "safepeft.finetune.p_tuning:METHOD")
FINETUNE_METHODS.register("salora", "safepeft.finetune.salora.method:METHOD")
