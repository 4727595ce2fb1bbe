"""Loading directories written by `safepeft quantize` for the torch schemes (the writers live in `quantize/`).

Such a directory is an ordinary HF model directory (config, tokenizer) whose weights file holds quantized tensors,
plus `quantization.json` naming the format. It loads through `load_model(DIR)` like any model:

* ``torch-int8-dynamic``: per-output-channel symmetric int8 weights (``<linear>.weight_int8`` + ``.weight_scale``)
  rebuilt into torch's dynamically quantized Linear (int8 weights, activations quantized on the fly). CPU only.
* ``quanto``: optimum-quanto's serialized state dict + quantization map, rebuilt with ``requantize``.

Both rebuild the exact quantized weights (no re-quantization), so a reloaded model computes what the quantizer
measured. GGUF directories hold a ``.gguf`` file and resolve as GGUF sources; see `models/llamacpp.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, ModelLoadError, missing_dependency

MANIFEST = "quantization.json"
WEIGHTS = "model.safetensors"


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The quantize manifest of a directory, or None for a directory not written by `safepeft quantize`."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}).",
                             "Re-run `safepeft quantize` into a new --out.") from exc


def describe(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """What results.json records about a quantized model (in ``model.params``): scheme, bits, library."""
    if manifest is None:
        return {}
    return {"scheme": manifest.get("scheme"), "bits": manifest.get("bits"), "quantization_library":
            manifest.get("library"), "quantization_format": manifest.get("format")}


def cpu_only(manifest: dict[str, Any] | None) -> bool:
    """True for schemes whose kernels exist only on the CPU (torch dynamic int8)."""
    return manifest is not None and manifest.get("format") == "torch-int8-dynamic"


def check_device(manifest: dict[str, Any], device: str) -> None:
    if cpu_only(manifest) and not device.startswith("cpu"):
        raise ConfigError(
            f"The int8-dynamic model runs on CPU only (torch dynamic quantization), not on {device}.",
            "Pass --device cpu, or quantize with --scheme int8 (optimum-quanto) for GPUs.",
        )


def load_quantized(location: str, manifest: dict[str, Any], trust_remote_code: bool) -> tuple[Any, Any]:
    """(model, tokenizer) of a quantized directory."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaders = {"torch-int8-dynamic": _load_int8_dynamic, "quanto": _load_quanto}
    fmt = manifest.get("format")
    if fmt not in loaders:
        raise ModelLoadError(
            f"{location} holds a quantized model in format {fmt!r}, which this safepeft cannot load.",
            f"Known formats: {', '.join(loaders)}. Upgrade safepeft or re-quantize.",
        )
    config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
    with _no_init_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    from safetensors.torch import load_file

    state = load_file(str(Path(location) / WEIGHTS))
    loaders[fmt](model, state, manifest)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    return model.eval(), tokenizer


def _load_int8_dynamic(model: Any, state: dict[str, Any], manifest: dict[str, Any]) -> None:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    names = [key[: -len(".weight_int8")] for key in state if key.endswith(".weight_int8")]
    for name in names:
        q, scale = state.pop(f"{name}.weight_int8"), state.pop(f"{name}.weight_scale")  # (out, in), (out,)
        bias = state.pop(f"{name}.bias", None)
        module = DynamicLinear(q.shape[1], q.shape[0], bias_=bias is not None, dtype=torch.qint8)
        # Dequantize exactly (q * scale) and re-quantize with the same scales: round() gives back q.
        weight = torch.quantize_per_channel(q.float() * scale[:, None], scale.double(),
                                            torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        module.set_weight_bias(weight, bias)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
    _load_rest(model, state)


def _load_quanto(model: Any, state: dict[str, Any], manifest: dict[str, Any]) -> None:
    import torch

    try:
        from optimum.quanto import requantize
    except ImportError as exc:
        raise missing_dependency("optimum-quanto", "Loading an int8/int4 quantized model",
                                 "'safepeft[quantize]'") from exc
    requantize(model, state, manifest["quantization_map"], device=torch.device("cpu"))
    _outside_inference_mode(model)


def _outside_inference_mode(model: Any) -> None:
    """quanto's 4-bit weight tensors fail under torch.inference_mode (which HFGenerator uses): their view ops raise
    "Cannot set version_counter for inference tensor". Their modules therefore run with inference mode off and
    gradients still off, which computes the same values."""
    import functools

    import torch
    from optimum.quanto.nn import QModuleMixin

    for module in model.modules():
        if isinstance(module, QModuleMixin):
            @functools.wraps(module.forward)
            def forward(*args: Any, _inner: Any = module.forward, **kwargs: Any) -> Any:
                with torch.inference_mode(False), torch.no_grad():
                    return _inner(*args, **kwargs)

            module.forward = forward


def _load_rest(model: Any, state: dict[str, Any]) -> None:
    """Copy the unquantized tensors in place (the dynamic Linear modules hold no parameters of their own)."""
    import torch

    targets = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    unexpected = [key for key in state if key not in targets]
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    missing = [key for key in targets if key not in state and key not in tied and not key.endswith("inv_freq")]
    if missing or unexpected:
        raise ModelLoadError(
            f"The quantized weights do not match the model config (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}).", "Re-run `safepeft quantize`; the directory may be from another model.",
        )
    with torch.no_grad():
        for key, value in state.items():
            targets[key].copy_(value)


def _no_init_weights() -> Any:
    """Build the model without random init (its weights are overwritten right away)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers < 5
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()
