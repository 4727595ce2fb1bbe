"""Registry of generation backends (local transformers today; llama.cpp and API backends register here too)."""

from __future__ import annotations

from safepeft.registry import Registry

BACKENDS: Registry = Registry("backend", "safepeft list backends")
BACKENDS.register("hf", "safepeft.models.hf:HFGenerator")
BACKENDS.register("openai", "safepeft.models.openai_compat:OpenAICompatGenerator")
BACKENDS.register("llamacpp", "safepeft.models.llamacpp:LlamaCppGenerator")
