"""vLLM's offline engine as a Generator: one engine per base model, each adapter a ``LoRARequest`` on it.

``VLLMEngine`` wraps one ``vllm.LLM(model=..., enable_lora=True, max_lora_rank=...)``; ``engine.generator(adapter)``
gives a Generator that sends every request with that adapter's ``LoRARequest(name, int_id, path)`` (distinct int
ids per adapter directory, 1, 2, ...), so one engine and one copy of the base weights audit N adapters.
``shared_engine`` keeps this process's one engine (a GPU rarely holds two) and replaces it when another base is asked
for; ``vllm_generator`` and ``open_target`` (the `--backend vllm` opener) build on it.

Prompts are rendered here with the tokenizer's chat template (``LLM.get_tokenizer()``, with `--chat-template`
applied as the HF backend applies it) and sent as token ids, not through ``LLM.chat``: the text and the special
tokens are then exactly the HF backend's, and prefill (a chat ending with an assistant turn) works the same way.
Greedy decoding is ``temperature=0``. ``loglikelihood`` sends context + continuation with ``prompt_logprobs=1`` and
``max_tokens=1`` and sums the continuation tokens' logprobs.

vllm is imported lazily (``pip install 'safepeft[vllm]'``). Verified only against a fake of ``LLM``,
``SamplingParams`` and ``LoRARequest`` (tests/models/test_vllm_backend.py), not on a real vLLM: see docs/gpu.md.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, ModelLoadError, missing_dependency
from safepeft.models.backends import Opened
from safepeft.models.batch_size import BatchSize, chunk_size
from safepeft.models.target_spec import TargetSpec
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt
from safepeft.records.results import ArtifactRef

LORA_RANKS = (16, 32, 64, 128, 256, 512)
"""max_lora_rank values vLLM accepts (16 is its default); an adapter's rank is rounded up to one of them."""


def _vllm() -> tuple[Any, Any]:
    """The vllm module and its LoRARequest class, or the one-line install error."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise missing_dependency("vllm", "The vllm backend", "'safepeft[vllm]'") from exc
    return vllm, LoRARequest


class VLLMEngine:
    """One ``vllm.LLM`` over a base model, LoRA enabled; ``generator(adapter)`` per adapter."""

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto", max_lora_rank: int = LORA_RANKS[0],
                 batch_size: BatchSize = "auto", chat_template: str | None = None,
                 trust_remote_code: bool = False) -> None:
        from safepeft.models.loader import _prepare_tokenizer

        vllm, self._lora_class = _vllm()
        _check_device(device)
        self.spec = model
        self.source, location, self.fingerprint = _base_location(model, trust_remote_code)
        # safepeft's `auto` is bf16 on CUDA (the HF backend's choice); vLLM's own `auto` would run fp32 models in fp16.
        self.dtype = "bfloat16" if dtype == "auto" else dtype
        self.max_lora_rank = max_lora_rank
        self.batch_size = batch_size
        self.options = (dtype, device, chat_template, trust_remote_code, batch_size)
        kwargs: dict[str, Any] = dict(model=location, dtype=self.dtype, trust_remote_code=trust_remote_code,
                                      enable_lora=True, max_lora_rank=max_lora_rank, load_format="safetensors",
                                      seed=0)
        if batch_size != "auto":
            kwargs["max_num_seqs"] = int(batch_size)  # auto: vLLM's scheduler fills the KV cache it has
        self.llm: Any = vllm.LLM(**kwargs)
        self.version = str(getattr(vllm, "__version__", "unknown"))
        self.tokenizer = self.llm.get_tokenizer()
        _prepare_tokenizer(self.tokenizer, self.source, chat_template, True)
        template = str(getattr(self.tokenizer, "chat_template", "") or "")
        self.template_hash = hashlib.sha256(template.encode()).hexdigest()[:16]
        self._ids: dict[str, int] = {}  # adapter fingerprint -> LoRARequest int id

    def generator(self, adapter: str | Path | None = None) -> VLLMGenerator:
        """A Generator for the base (``adapter=None``) or base + the LoRA adapter in ``adapter``."""
        if adapter is None:
            return VLLMGenerator(self, None, None)
        from safepeft.models.fingerprint import directory_fingerprint
        from safepeft.models.safety import check_adapter_dir

        path = Path(adapter)
        check_adapter_dir(path)
        rank = adapter_rank(path)
        if rank > self.max_lora_rank:
            raise ConfigError(f"The adapter {path} has rank {rank}, above this vLLM engine's max_lora_rank "
                              f"{self.max_lora_rank}.", f"Start the engine with max_lora_rank >= {rank}.")
        fingerprint = directory_fingerprint(path)
        int_id = self._ids.setdefault(fingerprint, len(self._ids) + 1)  # vLLM wants ids >= 1, unique per adapter
        request = self._lora_class(f"adapter_{fingerprint}", int_id, str(path.resolve()))
        return VLLMGenerator(self, request, fingerprint)

    def close(self) -> None:
        """Drop the engine (vLLM frees its GPU memory when the LLM object is collected)."""
        self.llm = None
        gc.collect()


class VLLMGenerator:
    """Generator over a shared ``VLLMEngine``, every request carrying this generator's ``LoRARequest`` (or none)."""

    def __init__(self, engine: VLLMEngine, lora_request: Any, adapter_fingerprint: str | None) -> None:
        self.engine = engine
        self.lora_request = lora_request
        self.adapter_fingerprint = adapter_fingerprint
        self.batch_size = chunk_size(engine.batch_size)
        """Requests per call the run store should send (vLLM batches inside a call itself)."""
        self.progress = False

    def identity(self) -> dict[str, Any]:
        engine = self.engine
        return {"backend": "vllm", "model": engine.fingerprint, "adapter": self.adapter_fingerprint,
                "dtype": engine.dtype, "vllm": engine.version, "chat_template": engine.template_hash}

    def render(self, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
        """The text fed to the engine, rendered exactly as ``HFGenerator.render`` does."""
        from safepeft.models.hf import render_prompt

        return render_prompt(self.engine.tokenizer, prompt, system_prompt, chat)

    def _encode(self, text: str, raw: bool) -> list[int]:
        from safepeft.models.hf import encode_text

        return encode_text(self.engine.tokenizer, text, raw)

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        if not prompts:
            return []
        vllm, _ = _vllm()
        options: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature}
        if params.temperature > 0:
            options |= {"top_p": params.top_p, "seed": params.seed}
        if params.stop:
            options["stop"] = list(params.stop)
        raw = not params.chat
        ids = [self._encode(self.render(p, params.system_prompt, params.chat), raw and isinstance(p, str))
               for p in prompts]
        outputs = self._run(ids, vllm.SamplingParams(**options))
        return [_cut_at_stop(out.outputs[0].text, params.stop) for out in outputs]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        vllm, _ = _vllm()
        pairs = []
        for request in requests:
            text = self.render(request.context, request.system_prompt)
            context = self._encode(text, raw=isinstance(request.context, str))
            pairs.append((context, self._encode(request.continuation, raw=False)))
        scored = [i for i, (_, cont) in enumerate(pairs) if cont]
        scores = [0.0] * len(requests)
        if scored:
            # prompt_logprobs=1: each prompt position's own token is returned beside the top-1 alternative.
            outputs = self._run([pairs[i][0] + pairs[i][1] for i in scored],
                                vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1))
            for i, out in zip(scored, outputs, strict=True):
                context, cont = pairs[i]
                full = context + cont
                scores[i] = float(sum(out.prompt_logprobs[p][full[p]].logprob for p in range(len(context), len(full))))
        return scores

    def _run(self, ids: list[list[int]], sampling: Any) -> list[Any]:
        if self.engine.llm is None:
            raise ModelLoadError(f"The vLLM engine of {self.engine.spec} was released (another base was loaded).",
                                 "Ask vllm_generator for a new generator.")
        prompts = [{"prompt_token_ids": row} for row in ids]
        return list(self.engine.llm.generate(prompts, sampling, use_tqdm=False, lora_request=self.lora_request))


_ENGINE: list[VLLMEngine] = []  # this process's one engine (a list so tests can empty it)


def shared_engine(model: str, *, dtype: str = "auto", device: str = "auto", max_lora_rank: int = LORA_RANKS[0],
                  batch_size: BatchSize = "auto", chat_template: str | None = None,
                  trust_remote_code: bool = False) -> VLLMEngine:
    """This process's engine for ``model``: reused when the model and options match and its max_lora_rank is large
    enough; otherwise the old engine is dropped first (one base on the GPU at a time)."""
    options = (dtype, device, chat_template, trust_remote_code, batch_size)
    if _ENGINE:
        engine = _ENGINE[0]
        if engine.spec == model and engine.options == options and engine.max_lora_rank >= max_lora_rank:
            return engine
        release()
    engine = VLLMEngine(model, dtype=dtype, device=device, max_lora_rank=max_lora_rank, batch_size=batch_size,
                        chat_template=chat_template, trust_remote_code=trust_remote_code)
    _ENGINE.append(engine)
    return engine


def release() -> None:
    """Drop this process's engine."""
    while _ENGINE:
        _ENGINE.pop().close()


def vllm_generator(model: str, adapter: str | Path | None = None, *, dtype: str = "auto", device: str = "auto",
                   max_lora_rank: int | None = None, batch_size: BatchSize = "auto",
                   chat_template: str | None = None, trust_remote_code: bool = False) -> VLLMGenerator:
    """A Generator for ``model`` (+ LoRA ``adapter``) on this process's shared vLLM engine.

    ``max_lora_rank`` None: the adapter's own rank rounded up to a value vLLM accepts (at least 16); an engine that
    already runs with a larger one is reused. ``batch_size``: vLLM's ``max_num_seqs`` (``auto``: vLLM's default
    scheduling). ``device``: ``auto`` or ``cuda`` (vLLM places the model itself; choose the GPU with
    CUDA_VISIBLE_DEVICES). Raises MissingDependencyError naming ``pip install 'safepeft[vllm]'`` without vllm."""
    rank = max_lora_rank or lora_rank_for(adapter)
    engine = shared_engine(model, dtype=dtype, device=device, max_lora_rank=rank, batch_size=batch_size,
                           chat_template=chat_template, trust_remote_code=trust_remote_code)
    return engine.generator(adapter)


def open_target(target: TargetSpec) -> Opened:
    """The `--backend vllm` opener (``BACKENDS["vllm"]``): the generator and what results.json records.

    ``target.batch_size`` is not passed on: it sizes the HF backend's forward batches, and its default (16) as
    vLLM's ``max_num_seqs`` would throttle an engine that schedules its own batches within its KV cache."""
    generator = vllm_generator(target.model, target.adapter, dtype=target.dtype, device=target.device,
                               chat_template=target.chat_template, trust_remote_code=target.trust_remote_code)
    engine = generator.engine
    model_ref = ArtifactRef(spec=target.model, fingerprint=engine.fingerprint, params={
        "backend": "vllm", "dtype": engine.dtype, "source": engine.source.kind, "vllm": engine.version})
    adapter_ref = (ArtifactRef(spec=target.adapter, fingerprint=generator.adapter_fingerprint)
                   if target.adapter is not None else None)
    return Opened(generator, model_ref, adapter_ref)


def adapter_rank(path: Path) -> int:
    """The largest LoRA rank in an adapter directory; a ConfigError for what vLLM cannot serve."""
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "LORA" or config.get("use_dora"):
        kind = "DoRA" if peft_type == "LORA" else peft_type or "unknown"
        raise ConfigError(f"The vllm backend serves LoRA adapters only; {path} is a {kind} adapter.",
                          "Audit it with --backend hf.")
    return max([int(config.get("r") or 8), *map(int, (config.get("rank_pattern") or {}).values())])


def lora_rank_for(adapter: str | Path | None) -> int:
    """The smallest max_lora_rank vLLM accepts that serves ``adapter`` (16 without one)."""
    if adapter is None:
        return LORA_RANKS[0]
    rank = adapter_rank(Path(adapter))
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ConfigError(f"The adapter {adapter} has rank {rank}; vLLM serves ranks up to {LORA_RANKS[-1]}.",
                      "Audit it with --backend hf.")


def _check_device(device: str) -> None:
    if device in ("auto", "cuda"):
        return
    if device.startswith("cuda:"):
        raise ConfigError(f"--device {device}: vLLM places the model itself and takes no device index.",
                          f"Select the GPU with CUDA_VISIBLE_DEVICES={device.split(':', 1)[1]} and --device cuda.")
    raise ConfigError(f"--device {device}: the vllm backend runs where its installed build runs (CUDA for the "
                      "PyPI wheel) and cannot be moved.", "Use --device auto, or --backend hf for this device.")


def _base_location(spec: str, trust_remote_code: bool) -> tuple[Any, str, str]:
    """(source, what vLLM loads, fingerprint) of a model spec; fingerprints are the HF loader's, so the two backends
    record the same model fingerprint."""
    from safepeft.models import fingerprint as fp
    from safepeft.models.loader import converted_safetensors_dir
    from safepeft.models.quantized import read_manifest
    from safepeft.models.safety import require_safetensors
    from safepeft.models.spec import resolve

    source = resolve(spec)
    if source.kind == "gguf":  # de-quantised once into the cache (as the HF loader does); vLLM reads that directory
        converted, fingerprint = converted_safetensors_dir(source)
        return source, str(converted), fingerprint
    if source.kind == "dir":
        if read_manifest(source.location) is not None:
            raise ConfigError(f"{spec} was written by `safepeft quantize`; vLLM cannot load its format.",
                              "Audit it with --backend hf (or llamacpp for gguf schemes).")
        require_safetensors(source.location, "model directory")
        return source, source.location, fp.directory_fingerprint(source.location)
    from transformers import AutoConfig

    commit = getattr(AutoConfig.from_pretrained(source.location, trust_remote_code=trust_remote_code),
                     "_commit_hash", None)
    return source, source.location, fp.hub_fingerprint(source.location, commit)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    # vLLM cuts at stop strings itself; cutting again keeps every backend's outputs alike if a version does not.
    from safepeft.models.hf import _cut_at_stop as cut

    return cut(text, stops)
