"""load_model(spec): one entry point for `embedded`, .gguf files, HF directories and hub ids, plus an adapter.

GGUF files are de-quantised by transformers' GGUF loader (about 15 s for the embedded model), so the first load
converts them once to a safetensors directory in the cache; later loads take about 0.1 s and give bit-identical
logits. The fingerprint stays the GGUF file's hash, so the cache is invisible to results.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, IncompatibleArtifactError, ModelLoadError
from safepeft.models import fingerprint as fp
from safepeft.models import quantized
from safepeft.models.safety import check_adapter_dir, check_model_finite, require_safetensors
from safepeft.models.spec import ModelSource, resolve
from safepeft.store.text import read_user_text

_DTYPES = ("auto", "float32", "bfloat16", "float16")
# Built-in templates for `--chat-template NAME` (a file of that name wins). `none` sends prompts as plain text for
# base models: the turns' contents joined by blank lines (one user turn is sent exactly as written).
CHAT_TEMPLATES = {
    "chatml": ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}"),
    "none": ("{% for message in messages %}{% if not loop.first %}{{ '\\n\\n' }}{% endif %}{{ message['content'] }}"
             "{% endfor %}"),
}


@dataclass
class LoadedModel:
    """A model ready to generate: weights, tokenizer (left padding, chat template) and provenance."""

    model: Any
    tokenizer: Any
    source: ModelSource
    fingerprint: str
    adapter_path: str | None = None
    adapter_fingerprint: str | None = None
    quantization: dict[str, Any] | None = None
    """The `safepeft quantize` manifest (scheme, bits, library ...) when the model was written by it."""

    @property
    def spec(self) -> str:
        return self.source.spec

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).replace("torch.", "")

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def info(self) -> dict[str, Any]:
        """What `safepeft models info` prints."""
        config = self.model.config
        return {
            "spec": self.spec,
            "source": self.source.kind,
            "location": self.source.location,
            "architecture": (getattr(config, "architectures", None) or [type(self.model).__name__])[0],
            "model_type": config.model_type,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "layers": getattr(config, "num_hidden_layers", None),
            "hidden_size": getattr(config, "hidden_size", None),
            "vocab_size": getattr(config, "vocab_size", None),
            "dtype": self.dtype,
            "device": self.device,
            "chat_template": bool(getattr(self.tokenizer, "chat_template", None)),
            "fingerprint": self.fingerprint,
            "adapter": self.adapter_path,
            "adapter_fingerprint": self.adapter_fingerprint,
            "quantization": None if self.quantization is None else
            {k: self.quantization.get(k) for k in ("scheme", "bits", "library")},
        }

    def generator(self, batch_size: int = 16, progress: bool = True) -> Any:
        from safepeft.models.hf import HFGenerator

        return HFGenerator(self, batch_size=batch_size, progress=progress)


def load_model(
    spec: str,
    *,
    adapter: str | os.PathLike[str] | None = None,
    dtype: str = "auto",
    device: str = "auto",
    chat_template: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
    require_chat_template: bool = True,
) -> LoadedModel:
    """Load base weights (+ optional PEFT adapter) and a left-padding tokenizer with a chat template."""

    if dtype not in _DTYPES:
        raise ConfigError(f"Unknown dtype {dtype!r}.", f"Use one of: {', '.join(_DTYPES)}.")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor bar on stderr for a load that takes a second; ours say more
    source = resolve(spec)
    where = {"dir": source.location, "gguf": Path(source.location).parent}.get(source.kind)
    manifest = quantized.read_manifest(where) if where is not None else None
    if manifest is not None and device != "auto":  # a scheme's own device limit is the more useful message
        quantized.check_device(manifest, device)
    # `auto` means "where this model runs": torch's dynamic int8 kernels exist only on the CPU, so a GPU box audits
    # an int8-dynamic model there instead of refusing (an explicit --device cuda still gets the scheme's error).
    device = "cpu" if device == "auto" and quantized.cpu_only(manifest) else pick_device(device)
    if manifest is not None:
        quantized.check_device(manifest, device)
    torch_dtype = _pick_dtype(dtype, device)
    model, tokenizer, fingerprint = _LOADERS[source.kind](source, torch_dtype, trust_remote_code)
    check_model_finite(model, f"model {spec!r}")
    _prepare_tokenizer(tokenizer, source, chat_template, require_chat_template)
    model.to(device)
    model.eval()
    loaded = LoadedModel(model, tokenizer, source, fingerprint, quantization=manifest)
    if adapter is not None:
        attach_adapter(loaded, adapter)
    return loaded


def attach_adapter(loaded: LoadedModel, adapter: str | os.PathLike[str]) -> None:
    """Apply a saved PEFT adapter on top of the loaded base (not merged)."""
    from peft import PeftModel

    path = Path(adapter)
    check_adapter_dir(path)
    try:
        loaded.model = PeftModel.from_pretrained(loaded.model, str(path))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise adapter_mismatch(path, loaded.spec, exc) from exc
    loaded.model.eval()
    loaded.adapter_path = str(path)
    loaded.adapter_fingerprint = fp.directory_fingerprint(path)


def adapter_mismatch(path: Path, spec: str, exc: Exception) -> IncompatibleArtifactError:
    """The error for an adapter PEFT could not put on ``spec`` (the loader's and the adapter pool's)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    wanted = (line for line in lines if "size mismatch" in line or "not found" in line)
    detail = next(wanted, lines[0] if lines else "")
    return IncompatibleArtifactError(
        f"The adapter {path} does not fit the base model {spec} ({detail[:300]}).",
        "Use the base model the adapter was trained on (see its adapter_config.json / safepeft_train.json).",
    )


def pick_device(device: str) -> str:
    """``auto`` resolved (CUDA when torch sees it, else CPU); an unavailable request is a one-line ConfigError.
    Model loads and streaming repairs resolve devices through this one rule."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} was asked for, but this torch sees no CUDA device "
                          f"(torch {torch.__version__}).", "Use --device cpu (or auto), or install a CUDA build of "
                          "torch on a machine with a GPU.")
    if device.startswith("cuda:") and int(device.split(":", 1)[1] or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s).",
                          "Pick an index below that, or cuda.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but MPS is not available here.", "Use --device cpu or auto.")
    if device != "auto":
        if device not in ("cpu", "mps") and not device.startswith("cuda"):
            raise ConfigError(f"Unknown --device {device!r}.", "Use auto, cpu, cuda, cuda:N or mps.")
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        # bf16 is slower than fp32 at batch > 1 on CPUs without native bf16, so fp32 on CPU.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _prepare_tokenizer(tokenizer: Any, source: ModelSource, template_file: Any, required: bool) -> None:
    tokenizer.padding_side = "left"  # batched generation continues from the right edge
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if template_file is not None and not Path(template_file).is_file() and str(template_file) in CHAT_TEMPLATES:
        tokenizer.chat_template = CHAT_TEMPLATES[str(template_file)]
    elif template_file is not None:
        path = Path(template_file)
        if not path.is_file():
            raise ConfigError(f"Chat template file not found: {path}.",
                              f"Pass a Jinja chat template file or one of: {', '.join(CHAT_TEMPLATES)}.")
        tokenizer.chat_template = read_user_text(path, "Chat template file")
        check_template(tokenizer.chat_template, path)
    if required and not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"The model {source.spec} has no chat template.",
            "Pass one with --chat-template FILE (a Jinja template, e.g. ChatML).",
        )


def check_template(template: str, origin: Any) -> None:
    """A chat template must compile as Jinja (a broken one would fail later, mid-run, on every prompt)."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"The chat template {origin} is not valid Jinja (line {exc.lineno}: {exc.message}).",
                          "Fix the template, or pass a known-good one (e.g. the model's own).") from None


def _load_dir(source: ModelSource, torch_dtype: Any, trust_remote_code: bool) -> tuple[Any, Any, str]:
    manifest = quantized.read_manifest(source.location)
    if manifest is not None:  # written by `safepeft quantize` (torch schemes)
        model, tokenizer = quantized.load_quantized(source.location, manifest, trust_remote_code)
        return model, tokenizer, fp.directory_fingerprint(source.location)
    model, tokenizer = _from_pretrained(source.location, source.spec, torch_dtype, trust_remote_code)
    return model, tokenizer, fp.directory_fingerprint(source.location)


def _load_hub(source: ModelSource, torch_dtype: Any, trust_remote_code: bool) -> tuple[Any, Any, str]:
    model, tokenizer = _from_pretrained(source.location, source.spec, torch_dtype, trust_remote_code)
    return model, tokenizer, fp.hub_fingerprint(source.location, getattr(model.config, "_commit_hash", None))


def _load_gguf(source: ModelSource, torch_dtype: Any, trust_remote_code: bool) -> tuple[Any, Any, str]:
    _check_gguf_magic(Path(source.location))
    fingerprint = fp.gguf_fingerprint(source.location)
    converted = _converted_dir(Path(source.location), fingerprint)
    model, tokenizer = _from_pretrained(str(converted), source.spec, torch_dtype, trust_remote_code)
    return model, tokenizer, fingerprint


def _from_pretrained(location: str, spec: str, torch_dtype: Any, trust_remote_code: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if Path(location).is_dir():
        require_safetensors(location, "model directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        # use_safetensors: a hub repo with only pytorch_model.bin fails here instead of being unpickled.
        model = AutoModelForCausalLM.from_pretrained(
            location, dtype=torch_dtype, trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except OSError as exc:
        raise ModelLoadError(
            f"Could not load model {spec!r}: {str(exc).splitlines()[0][:300]}",
            "Check the path or hub id; without network, the model must already be in the local HF cache.",
        ) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"The model {spec!r} needs custom code from its repository.",
                "Review that code, then pass --trust-remote-code.",
            ) from exc
        raise ModelLoadError(f"Could not load model {spec!r}: {str(exc).splitlines()[0][:300]}") from exc
    return model, tokenizer


def _check_gguf_magic(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"Cannot read GGUF file {path}: {exc.strerror}.", "Check the file permissions.") from exc
    if magic != b"GGUF":
        raise ModelLoadError(
            f"{path} is not a GGUF file (bad magic bytes {magic!r}).",
            "The file is corrupt or of another format; re-download it.",
        )


def converted_safetensors_dir(source: ModelSource) -> tuple[Path, str]:
    """The cached safetensors conversion of a GGUF source (made on first use) and the GGUF's fingerprint."""
    _check_gguf_magic(Path(source.location))
    fingerprint = fp.gguf_fingerprint(source.location)
    return _converted_dir(Path(source.location), fingerprint), fingerprint


def _converted_dir(gguf: Path, fingerprint: str) -> Path:
    """De-quantise a GGUF once into a cached safetensors directory (atomic: temp dir + rename)."""
    target = fp.cache_dir() / "converted" / fingerprint
    if (target / ".complete").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:  # the GGUF reader raises many kinds (ValueError, KeyError, struct.error ...)
        raise ModelLoadError(
            f"Could not read GGUF file {gguf}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}",
            "The file may be truncated or use an architecture transformers cannot de-quantise.",
        ) from exc
    if getattr(model, "hf_quantizer", None) is not None:
        # The weights are already plain fp32; only the quantizer flag blocks save_pretrained and Trainer.
        model.hf_quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{fingerprint}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps({"gguf": str(gguf), "fingerprint": fingerprint}))
        (tmp / ".complete").touch()
        if target.exists():  # a concurrent conversion won; keep its result
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


_LOADERS = {"gguf": _load_gguf, "dir": _load_dir, "hub": _load_hub}
