"""LlamaCppGenerator: the Generator protocol over llama.cpp (llama-cpp-python), for auditing GGUF files as deployed.

Prompts are rendered with the GGUF's own chat template (Jinja, sandboxed, as transformers renders it) so the text
fed to llama.cpp matches what the HF backend feeds; a chat ending in an assistant message is a prefill (the
template is rendered with that message and cut right after its content, as transformers'
``continue_final_message`` does). Decoding: temperature 0 is greedy; sampling uses top-p only (top-k and min-p
off) with the request's seed, matching HFGenerator's settings. Greedy text can still differ from transformers on
near-ties: the engines' arithmetic differs (see docs/quantize.md).

Log-likelihood evaluates the context once and then one continuation token at a time, reading the last-token
logits (llama.cpp keeps only those unless every position's logits are allocated: n_ctx x vocab floats).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from safepeft.errors import ConfigError, ModelLoadError, missing_dependency
from safepeft.models import fingerprint as fp
from safepeft.models.spec import resolve
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt


def gguf_path(spec: str) -> Path:
    """The .gguf file a model spec names (a file, a directory holding one, or `embedded`)."""
    source = resolve(spec)
    if source.kind != "gguf":
        raise ConfigError(f"The llama.cpp backend needs a GGUF model; {spec!r} is a {source.kind} model.",
                          "Pass a .gguf file or a `safepeft quantize --scheme gguf-*` directory, or use --backend hf.")
    return Path(source.location)


class LlamaCppGenerator:
    """Generator over a GGUF file with llama.cpp (CPU by default; `n_gpu_layers=-1` offloads all layers)."""

    def __init__(self, spec: str, n_ctx: int = 4096, n_threads: int | None = None, n_gpu_layers: int = 0,
                 chat_template: str | None = None, progress: bool = True) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise missing_dependency("llama-cpp-python", "The llama.cpp backend", "'safepeft[llamacpp]'") from exc
        self.spec = spec
        self.path = gguf_path(spec)
        self.fingerprint = fp.gguf_fingerprint(self.path)
        try:
            with _plain_cpu_buffers():
                self.llm = Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(),
                                 n_gpu_layers=n_gpu_layers, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.path}: {exc}",
                "Check that the file is a complete GGUF of an architecture llama.cpp supports.") from exc
        # llama-cpp-python's own finalizer can fail during interpreter teardown; close it while Python is whole.
        atexit.register(_close, weakref.ref(self.llm))
        meta = self.llm.metadata
        self.template = chat_template or meta.get("tokenizer.chat_template")
        self.bos = self._token_text(self.llm.token_bos())
        self.eos = self._token_text(self.llm.token_eos())
        self.progress = progress

    def model_params(self) -> dict[str, Any]:
        """What results.json records about the model: backend, context size and any quantize manifest."""
        from safepeft.models.quantized import describe, read_manifest

        return {"backend": "llamacpp", "source": "gguf", "n_ctx": self.llm.n_ctx(),
                **describe(read_manifest(self.path.parent))}

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def identity(self) -> dict[str, Any]:
        return {"backend": "llamacpp", "model": self.fingerprint, "adapter": None, "n_ctx": self.llm.n_ctx()}

    # -- prompts -----------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
        """The exact text fed to llama.cpp (same contract as HFGenerator.render)."""
        if isinstance(prompt, str) and not chat:
            return prompt
        if not self.template:
            raise ModelLoadError(f"The GGUF {self.path.name} has no chat template.",
                                 "Pass a chat template, or send raw prompts (GenParams.chat=False).")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if system_prompt is not None and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system_prompt})
        prefill = messages[-1]["role"] == "assistant"
        text = render_template(self.template, messages, not prefill, self.bos, self.eos)
        if prefill:  # cut after the final assistant content (transformers' continue_final_message)
            content = messages[-1]["content"]
            text = text[: text.rindex(content) + len(content)] if content.strip() else text
        return text

    def _tokens(self, prompt: Prompt, params_chat: bool, system_prompt: str | None) -> list[int]:
        text = self.render(prompt, system_prompt, params_chat)
        raw = not params_chat and isinstance(prompt, str)
        # A chat template writes its own BOS; raw text gets the vocabulary's add-BOS setting.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=raw, special=True)

    # -- generation --------------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        from safepeft import progress

        outputs = []
        with progress.bar("generate (llama.cpp)", len(prompts), self.progress and len(prompts) > 1) as advance:
            for prompt in prompts:
                outputs.append(self._generate_one(prompt, params))
                advance()
        return outputs

    def _generate_one(self, prompt: Prompt, params: GenParams) -> str:
        tokens = self._tokens(prompt, params.chat, params.system_prompt)
        room = self.llm.n_ctx() - len(tokens)
        if room < 1:
            raise ConfigError(f"A prompt of {len(tokens)} tokens does not fit llama.cpp's context of "
                              f"{self.llm.n_ctx()} tokens.", "Raise the backend's n_ctx (--n-ctx).")
        sample = params.temperature > 0
        result = self.llm.create_completion(
            tokens, max_tokens=min(params.max_new_tokens, room), temperature=params.temperature,
            top_p=params.top_p if sample else 1.0, top_k=0, min_p=0.0, repeat_penalty=1.0, seed=params.seed,
            stop=list(params.stop) or None,
        )
        return result["choices"][0]["text"]

    # -- log-likelihood ----------------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        import llama_cpp

        scores = []
        for request in requests:
            # Same rendering as HFGenerator.loglikelihood: templated context, BOS added for string contexts.
            text = self.render(request.context, request.system_prompt)
            context = self.llm.tokenize(text.encode("utf-8"), add_bos=isinstance(request.context, str), special=True)
            continuation = self.llm.tokenize(request.continuation.encode("utf-8"), add_bos=False, special=False)
            self.llm.reset()
            total = 0.0
            feed = context
            for token in continuation:
                self.llm.eval(feed)
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(self.llm.ctx), shape=(self.llm.n_vocab(),))
                shifted = logits.astype(np.float64) - logits.max()
                total += float(shifted[token] - np.log(np.exp(shifted).sum()))
                feed = [token]
            scores.append(total)
        return scores


@contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    """Load with llama.cpp's "extra" CPU buffer types off (`use_extra_bufts = False`).

    Those buffer types repack weights for special kernels; on CPUs with AMX (recent Xeons: amx_int8 / amx_bf16 in
    /proc/cpuinfo) the AMX one segfaults in `ggml_backend_amx_mul_mat` on the first decode of k-quant models
    (llama.cpp issue 20824, unfixed upstream; llama-cpp-python 0.3.36). A build flag cannot fix it for us: pip
    reuses a wheel cached from an earlier native build whatever CMAKE_ARGS say. So every CPU runs the plain ggml
    kernels, the same code path on AVX2 and AMX machines, at a small speed cost (bench/quantize.py). Llama() has
    no keyword for this field, so its default-params factory is wrapped while the model loads.
    """
    import llama_cpp.llama as module

    bindings = module.llama_cpp
    original = bindings.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _DEFAULTS_LOCK:
        bindings.llama_model_default_params = defaults
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


_DEFAULTS_LOCK = threading.Lock()


def _close(ref: Any) -> None:
    llm = ref()
    if llm is not None:
        llm.close()


def render_template(template: str, messages: list[dict[str, str]], add_generation_prompt: bool, bos: str,
                    eos: str) -> str:
    """Render a chat template in a sandbox, with the variables transformers provides."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token=bos, eos_token=eos)
