"""`quantize_model`: load (+ merge the adapter), quantize with a registered scheme, write DIR atomically.

The output directory is built under a temporary name beside it and renamed when complete, so a killed run
leaves no half-written model under the requested name.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.quantized import MANIFEST
from safepeft.models.safety import check_finite
from safepeft.quantize import QUANTIZERS
from safepeft.quantize.base import files_bytes, tensor_bytes
from safepeft.store.atomic import atomic_dir


def quantize_model(spec: str, scheme: str, out: str | Path, *, adapter: str | Path | None = None,
                   device: str = "auto", chat_template: str | Path | None = None,
                   trust_remote_code: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Quantize ``spec`` (+ ``adapter``, merged first) with ``scheme`` into ``out``; returns the manifest."""
    from safepeft.models.loader import load_model

    quantizer = QUANTIZERS.get(scheme)()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"The output directory {out} exists and is not empty.",
                          "Pick a new --out, or pass --overwrite to replace it.")
    target_device = quantizer.device(device)
    quantizer.check(target_device)
    began = time.perf_counter()
    loaded = load_model(spec, adapter=adapter, dtype="float32", device=target_device, chat_template=chat_template,
                        trust_remote_code=trust_remote_code)
    merge_adapter(loaded)  # load_model checked base and adapter; check_written_finite checks what is written
    reference = tensor_bytes(loaded.model)
    source_gguf = Path(loaded.source.location) if loaded.source.kind == "gguf" else None
    with atomic_dir(out) as tmp:
        facts = quantizer.write(loaded, tmp, source_gguf)
        check_written_finite(tmp)
        disk = files_bytes(tmp)
        memory = facts.pop("memory_bytes")
        manifest = {
            "scheme": scheme, "bits": quantizer.bits, "library": quantizer.library,
            "library_version": quantizer.version(), "format": quantizer.format,
            "source": {"spec": spec, "kind": loaded.source.kind, "fingerprint": loaded.fingerprint,
                       "adapter": None if adapter is None else str(adapter),
                       "adapter_fingerprint": loaded.adapter_fingerprint, "adapter_merged": adapter is not None},
            "size": {"reference_fp32_bytes": reference, "quantized_bytes": disk, "ratio": _ratio(reference, disk)},
            "memory": {"reference_fp32_bytes": reference, "quantized_bytes": memory,
                       "ratio": _ratio(reference, memory)},
            "seconds": round(time.perf_counter() - began, 2),
            **facts,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (tmp / "README.md").write_text(readme(manifest), encoding="utf-8")
    return manifest


# How each format loads outside safepeft; a format missing here gets only the safepeft line.
LOAD_NOTES = {
    "torch-int8-dynamic": "The weights are torch quantized tensors that transformers does not know. **Plain "
                          "`AutoModelForCausalLM.from_pretrained(DIR)` does not fail: it silently initialises the "
                          "missing weights at random**, giving a model that only looks loaded. Load it with safepeft.",
    "quanto": "The weights are optimum-quanto tensors (`quantization.json` names the scheme). **Plain "
              "`AutoModelForCausalLM.from_pretrained(DIR)` silently initialises them at random**; load it with "
              "safepeft (which uses `optimum.quanto.requantize`).",
    "transformers-bnb": "Standard transformers bitsandbytes format: `AutoModelForCausalLM.from_pretrained(DIR)` "
                        "loads it on a CUDA GPU with `bitsandbytes` installed.",
    "gguf": "A GGUF file: load it with llama.cpp (`llama-cli -m DIR/*.gguf`, `llama_cpp.Llama`) or with "
            "`AutoModelForCausalLM.from_pretrained(DIR, gguf_file=NAME)` (de-quantised to full precision).",
}


def readme(manifest: dict[str, Any]) -> str:
    """README.md of a quantized folder: what it is, where it came from and how to load it."""
    source = manifest["source"]
    adapter = f" with the adapter `{source['adapter']}` merged" if source["adapter"] else ""
    note = LOAD_NOTES.get(manifest["format"], "")
    return (
        f"# Quantized model: {manifest['scheme']} ({manifest['bits']}-bit, {manifest['library']})\n\n"
        f"Written by `safepeft quantize` from `{source['spec']}`{adapter}; details in `{MANIFEST}`.\n\n"
        "## Loading\n\n"
        "- safepeft: `safepeft audit --model DIR ...`, `safepeft generate --model DIR ...` or "
        "`safepeft.models.loader.load_model(\"DIR\")`.\n"
        + (f"- Elsewhere: {note}\n" if note else "")
    )


def check_written_finite(directory: Path) -> None:
    """Every floating tensor the quantizer wrote (weights, scales, zero points) is finite."""
    from safetensors import safe_open

    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            check_finite(((name, handle.get_tensor(name)) for name in handle.keys()), f"quantized file {file.name}",
                         "The quantizer produced NaN or Inf (scales of an all-zero or overflowing tensor); "
                         "nothing was written. Try another --scheme.")


def merge_adapter(loaded: Any) -> None:
    """Fold a PEFT adapter into the base weights (every scheme quantizes plain weights)."""
    model = loaded.model
    configs = getattr(model, "peft_config", None) or {}
    if any(c.is_prompt_learning for c in configs.values()):
        raise IncompatibleArtifactError(
            f"The adapter {loaded.adapter_path} is a prompt-learning adapter (virtual tokens), which cannot be "
            "merged into the weights.", "Quantize the base model and apply the adapter at audit time.",
        )
    if configs:
        loaded.model = model.merge_and_unload()


def _ratio(reference: int, quantized: int) -> float | None:
    return round(reference / quantized, 3) if quantized else None
