"""Served adapters: auditing one LoRA that an OpenAI-compatible engine serves by name (vLLM ``--enable-lora
--lora-modules NAME=PATH``, llama.cpp's server ``--lora``, TGI ``LORA_ADAPTERS``), and checking that the server
really applies it.

The known vLLM / lm-eval pitfall: an engine started without LoRA enabled, or asked for a name it does not route to
the adapter, answers with the *base* model and no error, and the base is audited under the adapter's name. So before
auditing, a few greedy completions of the served name are compared with the same prompts on the local base
and the local base + adapter: equal to the base and not to the adapter is an error; different from both is only a
warning, because servers may render the chat template or round bf16 differently from transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from safepeft.errors import ConfigError
from safepeft.records.generation import GenParams

# Short, varied prompts: 16 greedy tokens of three prompts tell an adapter from its base in practice, and cost a few
# seconds on the local model.
CHECK_PROMPTS = ("Write one sentence about the sea.", "What is 17 plus 25?", "Name three colours.")
CHECK_TOKENS = 16

Verdict = Literal["matches_adapter", "equals_base", "differs"]


@dataclass(frozen=True)
class ServedCheck:
    """Greedy completions of the same prompts from the served name, the local base and the local base + adapter."""

    served: list[str]
    base: list[str]
    local: list[str]

    @property
    def verdict(self) -> Verdict:
        # Whitespace at the ends is dropped: servers differ in whether they strip it.
        served, base, local = ([t.strip() for t in texts] for texts in (self.served, self.base, self.local))
        if served == local:
            return "matches_adapter"  # also when the adapter does not change these prompts: nothing to flag
        if served == base:
            return "equals_base"
        return "differs"

    def first_difference(self) -> str:
        """The first prompt whose served completion is not the local adapter's, for the message."""
        for prompt, served, local in zip(CHECK_PROMPTS, self.served, self.local, strict=False):
            if served.strip() != local.strip():
                return f"{prompt!r}: served {served.strip()[:60]!r}, local adapter {local.strip()[:60]!r}"
        return ""


def served_adapter_ref(served_model: str, adapter: Path | None) -> tuple[str, str | None]:
    """(spec, fingerprint) recorded for a served adapter: the declared directory and its hash when given (the
    server's copy cannot be hashed from here, so this is what the user *declared* it serves), else the name."""
    if adapter is None:
        return served_model, None
    from safepeft.models.fingerprint import directory_fingerprint
    from safepeft.models.safety import check_adapter_dir

    check_adapter_dir(adapter)
    return str(adapter), directory_fingerprint(adapter)


def compare_served(served: Any, loaded_base: Any, adapter: Path, prompts: Sequence[str] = CHECK_PROMPTS,
                   max_new_tokens: int = CHECK_TOKENS) -> ServedCheck:
    """Greedy completions of ``prompts`` from ``served`` (a Generator), then the local base, then base + adapter.

    ``loaded_base`` is a ``LoadedModel`` without an adapter; the adapter is attached to it here (no merge)."""
    from safepeft.models.loader import attach_adapter

    params = GenParams(max_new_tokens=max_new_tokens)
    served_out = served.generate(list(prompts), params)
    base_out = loaded_base.generator(batch_size=len(prompts), progress=False).generate(list(prompts), params)
    attach_adapter(loaded_base, adapter)
    local_out = loaded_base.generator(batch_size=len(prompts), progress=False).generate(list(prompts), params)
    return ServedCheck(served_out, base_out, local_out)


def check_served_adapter(check: ServedCheck, served_model: str, base_url: str, adapter: Path) -> str | None:
    """Raise when the server seems to answer with the base model; return a warning line when it only differs from
    the local adapter (the CLI prints it: it silences library ``UserWarning``s), None when it matches."""
    verdict = check.verdict
    if verdict == "equals_base":
        raise ConfigError(
            f"The served adapter {served_model!r} at {base_url} seems to equal the base model: its greedy "
            f"completions of {len(check.served)} check prompts are the local base's, not those of --adapter "
            f"{adapter}.",
            "Start the server with the adapter enabled (vLLM: --enable-lora --lora-modules "
            f"{served_model}={adapter}), check the name in GET {base_url}/models, or pass --no-served-check "
            "to audit it anyway.",
        )
    if verdict == "differs":
        return (
            f"The served adapter {served_model!r} at {base_url} gives other greedy completions than --adapter "
            f"{adapter} locally ({check.first_difference()}); chat templates or numerics may differ, or it serves "
            "another adapter. Its results record the declared adapter's fingerprint."
        )
    return None
