"""What is audited, as one typed spec: the model, its adapter, where it runs and what wraps it.

`safepeft audit`, `generate`, `judge-eval` and the study's audit step all describe their target with a
``TargetSpec`` and build it with ``safepeft.target.build_target``; the flags of those commands are generated from
these fields (``safepeft.cli.spec_options``), so each option is declared here once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from safepeft.records.base import Spec

BackendName = Literal["auto", "hf", "llamacpp", "openai", "vllm"]


class GuardSpec(Spec):
    """A guardrail wrapping the audited model."""

    name: str
    """Guard name (`safepeft list guards`)."""
    model: str | None = None
    """Model the guard uses (Llama Guard; the perplexity scorer; the backtranslation model)."""
    calibration: tuple[str, ...] | None = None
    """Benign prompts that calibrate the perplexity guard (None: its built-in set)."""


class TargetOptions(Spec):
    """Where and how a target runs: everything but which model it is (a study's `target:` entry, for all variants)."""

    backend: BackendName = "auto"
    """auto (openai with --base-url; llama.cpp for `quantize --scheme gguf-*` directories when llama-cpp-python is
    installed; transformers otherwise), hf, llamacpp, openai (needs --base-url) or vllm (the offline engine)."""
    base_url: str | None = None
    """Audit an OpenAI-compatible endpoint's --model instead of loading it here."""
    api_key_env: str | None = None
    """Environment variable holding the API key of --base-url (the key itself is never stored)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N, mps (auto runs int8-dynamic models on the CPU, where their kernels are)."""
    chat_template: str | None = None
    """Jinja chat template file, `chatml` (built-in ChatML) or `none` (plain text, for base models)."""
    trust_remote_code: bool = False
    """Allow custom model code from the hub (review it first)."""
    n_ctx: int = Field(4096, ge=256)
    """Context size of the llama.cpp backend."""


class TargetSpec(TargetOptions):
    """One audited target: model (+ adapter) on a backend, optionally behind a guard."""

    model: str
    """Model: `embedded`, a .gguf file, an HF directory, a hub id, or the served model's name with --base-url."""
    adapter: str | None = None
    """PEFT adapter directory applied on top of the model (with --served-adapter: the directory the server serves,
    fingerprinted and checked, never loaded)."""
    served_adapter: str | None = None
    """With --base-url: audit the LoRA the server serves under this model name (vLLM --lora-modules NAME=PATH)."""
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = 16
    """Prompts per forward batch, or `auto`: the largest that fits, found once per model and device."""
    guard: GuardSpec | None = None
    """Guardrail wrapping the model (None: the bare model)."""
