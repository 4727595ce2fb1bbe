"""Default target modules per architecture (``config.model_type``), like PEFT's ``utils/constants.py`` tables.

Our table covers the families the study uses; anything else falls back to PEFT's own mapping, and a model that
neither knows asks the user for ``--target-modules``.
"""

from __future__ import annotations

from typing import Any

from safepeft.errors import ConfigError

_ATTN_QV = ("q_proj", "v_proj")

LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _ATTN_QV, "mistral": _ATTN_QV, "mixtral": _ATTN_QV, "qwen2": _ATTN_QV, "qwen3": _ATTN_QV,
    "gemma": _ATTN_QV, "gemma2": _ATTN_QV, "gemma3_text": _ATTN_QV, "olmo2": _ATTN_QV, "granite": _ATTN_QV,
    "phi3": ("qkv_proj",), "gpt2": ("c_attn",), "gpt_neox": ("query_key_value",), "falcon": ("query_key_value",),
}

# IA3 rescales keys, values and the input of the MLP's down projection (Liu et al. 2022), as PEFT does.
_IA3_LLAMA = ("k_proj", "v_proj", "down_proj")
IA3_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _IA3_LLAMA, "mistral": _IA3_LLAMA, "mixtral": ("k_proj", "v_proj", "w2"), "qwen2": _IA3_LLAMA,
    "qwen3": _IA3_LLAMA, "gemma": _IA3_LLAMA, "gemma2": _IA3_LLAMA, "gemma3_text": _IA3_LLAMA,
    "olmo2": _IA3_LLAMA, "granite": _IA3_LLAMA, "phi3": ("qkv_proj", "down_proj"), "gpt2": ("c_attn", "mlp.c_proj"),
}
IA3_FEEDFORWARD: dict[str, tuple[str, ...]] = {
    "llama": ("down_proj",), "mistral": ("down_proj",), "mixtral": ("w2",), "qwen2": ("down_proj",),
    "qwen3": ("down_proj",), "gemma": ("down_proj",), "gemma2": ("down_proj",), "gemma3_text": ("down_proj",),
    "olmo2": ("down_proj",), "granite": ("down_proj",), "phi3": ("down_proj",), "gpt2": ("mlp.c_proj",),
}

_PEFT_FALLBACK = {
    "lora": "TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING",
    "ia3": "TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING",
    "ia3-feedforward": "TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING",
}
_TABLES = {"lora": LORA_TARGETS, "ia3": IA3_TARGETS, "ia3-feedforward": IA3_FEEDFORWARD}


def default_targets(kind: str, model_config: Any) -> list[str]:
    """Module names for ``kind`` ("lora", "ia3", "ia3-feedforward") on a model with this config."""
    from peft.utils import constants

    model_type = getattr(model_config, "model_type", None)
    found = _TABLES[kind].get(model_type) or getattr(constants, _PEFT_FALLBACK[kind]).get(model_type)
    if not found:
        flag = "--feedforward-modules" if kind == "ia3-feedforward" else "--target-modules"
        raise ConfigError(
            f"No default {kind} target modules for architecture {model_type!r}.",
            f"Pass them with {flag} (module names such as q_proj,v_proj; see `print(model)`).",
        )
    return list(found)
