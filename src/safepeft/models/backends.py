"""Generation backends: which one a target runs on (``choose_backend``, the one rule) and how each opens it.

``BACKENDS`` maps a backend name to its opener, ``open(target, pool) -> Opened``; openers import their library
lazily, so an optional backend costs nothing until it is used. What results.json records about the model
(``ArtifactRef.params``) is written here for every backend, so a model gets the same keys whichever command or
study step audits it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError
from safepeft.models.target_spec import TargetSpec
from safepeft.records.results import ArtifactRef
from safepeft.registry import Registry


@dataclass
class Opened:
    """A target's generator and what results.json records about its model and adapter."""

    generator: Any
    model: ArtifactRef
    adapter: ArtifactRef | None


Opener = Callable[[TargetSpec, Any], Opened]

BACKENDS: Registry[Opener] = Registry("backend", "safepeft list backends", holds="callables")
BACKENDS.register("hf", "safepeft.models.backends:open_hf")
BACKENDS.register("llamacpp", "safepeft.models.backends:open_llamacpp")
BACKENDS.register("openai", "safepeft.models.backends:open_openai")
BACKENDS.register("vllm", "safepeft.models.backends:open_vllm")


def choose_backend(target: TargetSpec, warn: Callable[[str], None] | None = None) -> str:
    """The backend that runs ``target``: the explicit one when it can, else by what the model is (see TargetSpec).

    A `quantize --scheme gguf-*` directory is audited through llama.cpp, the file people deploy. Without
    llama-cpp-python it falls back to transformers, which de-quantises the same GGUF weights exactly but computes in
    its own precision: ``warn`` says so, and results.json records backend `hf`."""
    backend, adapter = target.backend, target.adapter
    if target.base_url is not None:
        if backend not in ("auto", "openai"):
            raise ConfigError(f"--backend {backend} loads --model here, but --base-url {target.base_url} was given "
                              "too.", "Use --backend openai (or auto) with --base-url, or drop --base-url.")
        if adapter is not None and target.served_adapter is None:
            # Without a served name the requests go to --model: the base would be audited under the adapter's name.
            raise ConfigError(f"--adapter {adapter} was given with --base-url, but an endpoint cannot apply a local "
                              "adapter.", "Serve it (vLLM: --enable-lora --lora-modules NAME=DIR) and pass "
                              "--served-adapter NAME, or drop --base-url to load --model here.")
        return "openai"
    if backend == "openai" or target.served_adapter is not None:
        flag = "--backend openai" if backend == "openai" else f"--served-adapter {target.served_adapter}"
        raise ConfigError(f"{flag} was given without --base-url, so there is no server to send requests to.",
                          "Add --base-url URL (e.g. http://127.0.0.1:8000/v1), or drop the flag to load --model here.")
    if backend == "llamacpp" and adapter is not None:
        raise ConfigError("The llama.cpp backend cannot apply a PEFT adapter.",
                          "Merge it first (safepeft quantize --adapter DIR ...) or use --backend hf.")
    if backend != "auto":
        return backend
    if adapter is None and prefers_llamacpp(target.model):
        if importlib.util.find_spec("llama_cpp") is not None:
            return "llamacpp"
        if warn is not None:
            warn(f"{target.model} is a GGUF quantized model, but llama-cpp-python is not installed: auditing it "
                 "with transformers (the same de-quantised weights, transformers' kernels). Install "
                 "'safepeft[llamacpp]' to audit the file as llama.cpp runs it.")
    return "hf"


def prefers_llamacpp(spec: str) -> bool:
    """True for directories written by `safepeft quantize --scheme gguf-*`: audit the quantized file itself."""
    from safepeft.models.quantized import read_manifest

    path = Path(spec).expanduser()
    manifest = read_manifest(path) if path.is_dir() else None
    return manifest is not None and manifest.get("format") == "gguf"


def is_model_dir(path: str | Path) -> bool:
    """A full model directory (config.json, no adapter_config.json), as weight-writing repairs (RESTA, Safe Delta)
    output: audited as the model itself, not as an adapter."""
    folder = Path(path)
    return (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file()


def open_hf(target: TargetSpec, pool: Any) -> Opened:
    """transformers (+ PEFT) through the process's adapter pool: one base in memory for all its adapters."""
    from safepeft.models.quantized import describe

    generator = pool.generator(target.model, target.adapter, target.batch_size, chat_template=target.chat_template,
                               trust_remote_code=target.trust_remote_code)
    loaded = generator.loaded
    model_ref = ArtifactRef(spec=target.model, fingerprint=loaded.fingerprint, params={
        "backend": "hf", "dtype": loaded.dtype, "source": loaded.source.kind, **describe(loaded.quantization)})
    adapter_ref = (ArtifactRef(spec=target.adapter, fingerprint=loaded.adapter_fingerprint)
                   if target.adapter is not None else None)
    return Opened(generator, model_ref, adapter_ref)


def open_llamacpp(target: TargetSpec, pool: Any) -> Opened:
    """A GGUF file through llama.cpp (the deployed quantized file itself)."""
    from safepeft.models.llamacpp import LlamaCppGenerator

    generator = LlamaCppGenerator(target.model, n_ctx=target.n_ctx)
    return Opened(generator, ArtifactRef(spec=target.model, fingerprint=generator.fingerprint,
                                         params=generator.model_params()), None)


def open_openai(target: TargetSpec, pool: Any) -> Opened:
    """An OpenAI-compatible endpoint's model, or (``served_adapter``) a LoRA the server serves by name."""
    from safepeft.models.openai_compat import OpenAICompatGenerator
    from safepeft.models.served import served_adapter_ref

    endpoint = {"backend": "openai", "base_url": target.base_url}
    model_ref = ArtifactRef(spec=target.model, params=endpoint)
    assert target.base_url is not None  # choose_backend picks openai only with a base URL
    if target.served_adapter is None:
        return Opened(OpenAICompatGenerator(target.base_url, target.model, api_key_env=target.api_key_env),
                      model_ref, None)
    spec, declared = served_adapter_ref(target.served_adapter,
                                        Path(target.adapter) if target.adapter is not None else None)
    generator = OpenAICompatGenerator(target.base_url, target.served_adapter, api_key_env=target.api_key_env,
                                      adapter_fingerprint=declared)
    adapter_ref = ArtifactRef(spec=spec, fingerprint=declared, params={
        **endpoint, "served_model": target.served_adapter, "fingerprint": "declared" if declared else None})
    return Opened(generator, model_ref, adapter_ref)


def open_vllm(target: TargetSpec, pool: Any) -> Opened:
    """vLLM's offline engine: one engine per base model, each adapter a LoRARequest on it."""
    from safepeft.models import vllm_backend

    return vllm_backend.open_target(target)
