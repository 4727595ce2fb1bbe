"""Save a SaLoRA model two ways, and load the native form back.

Native (``salora_config.json`` + ``salora_model.safetensors``), exact and resumable. Per module NAME:
  ``lora_A`` (r, d_in), ``lora_B`` = C·B (d_out, r)      B folded with C (C is idempotent, so C·(C·B)·A = C·B·A);
  ``lora_A0``, ``lora_B0`` = C·B₀                        the residual base delta W_res − W = −s·(C·B₀)·A₀, kept
                                                         factored: rank r instead of a dense copy of every W;
  ``safety_basis`` U_s (d_out, r_s)                     so C can be rebuilt (the official code does not save C).

Portable (``adapter_config.json`` + ``adapter_model.safetensors``): an ordinary rank-2r PEFT LoRA on the ORIGINAL W,
ΔW = s·C·(B·A − B₀·A₀) = [C·B, −C·B₀]·[A; A₀]·s, with lora_alpha = 2·α so PEFT's scaling α'/r' = 2α/2r equals s.
Plain ``PeftModel.from_pretrained`` (and vLLM) load it on the unmodified base; no patched weights needed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from safepeft.errors import IncompatibleArtifactError
from safepeft.finetune.salora.init import ModuleInit
from safepeft.finetune.salora.layer import attach, salora_layers
from safepeft.finetune.salora.subspace import project_out
from safepeft.store import atomic_write_json
from safepeft.store.atomic import current_umask

NATIVE_CONFIG = "salora_config.json"
NATIVE_WEIGHTS = "salora_model.safetensors"
FORMAT = "safepeft-salora/1"


def save_native(model: nn.Module, out_dir: Path, meta: dict[str, Any]) -> None:
    """Write the native SaLoRA files; ``meta`` (method options, ...) goes into the config.

    Folds every layer in place first (B ← C·B, B₀ ← C·B₀; see ``SaLoRALinear.fold_``), so the model in memory and
    the one ``load_native`` rebuilds compute bit-identical outputs.
    """
    tensors: dict[str, torch.Tensor] = {}
    layers = dict(salora_layers(model))
    for name, layer in layers.items():
        layer.fold_()
        for key in ("lora_A", "lora_B", "lora_A0", "lora_B0", "safety_basis"):
            tensors[f"{name}.{key}"] = getattr(layer, key).detach()
    scaling = next(iter(layers.values())).scaling
    _save_tensors(tensors, out_dir / NATIVE_WEIGHTS)
    atomic_write_json(out_dir / NATIVE_CONFIG, {"format": FORMAT, **meta, "scaling": scaling,
                                                "target_modules": list(layers)})


def load_native(base_model: nn.Module, out_dir: Path, dropout: float = 0.0) -> nn.Module:
    """Attach a native SaLoRA output to ``base_model`` (modified in place): the exact trained model, A/B trainable."""
    import json

    config = json.loads((out_dir / NATIVE_CONFIG).read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise IncompatibleArtifactError(
            f"{out_dir / NATIVE_CONFIG} has format {config.get('format')!r}, expected {FORMAT!r}.",
            "Use a directory written by `safepeft train --method salora` of this safepeft version.",
        )
    tensors = load_file(str(out_dir / NATIVE_WEIGHTS))
    inits = {}
    for name in config["target_modules"]:
        _check_target(base_model, name, tensors[f"{name}.lora_A0"], tensors[f"{name}.lora_B0"], out_dir)
        inits[name] = ModuleInit(tensors[f"{name}.lora_A0"], tensors[f"{name}.lora_B0"],
                                 tensors[f"{name}.safety_basis"])
    attach(base_model, inits, float(config["scaling"]), dropout)
    with torch.no_grad():
        for name, layer in salora_layers(base_model):
            layer.lora_A.copy_(tensors[f"{name}.lora_A"])
            layer.lora_B.copy_(tensors[f"{name}.lora_B"])
    return base_model


def save_portable(model: nn.Module, out_dir: Path, base_model_name: str | None = None) -> None:
    """Write the rank-2r PEFT LoRA adapter on the original weights (adapter_config.json + safetensors)."""
    from peft import LoraConfig

    tensors: dict[str, torch.Tensor] = {}
    layers = dict(salora_layers(model))
    for name, layer in layers.items():
        basis = layer.safety_basis
        b = torch.cat([project_out(layer.lora_B.detach(), basis), -project_out(layer.lora_B0, basis)], dim=1)
        a = torch.cat([layer.lora_A.detach(), layer.lora_A0], dim=0)  # (2r, d_in); b: (d_out, 2r)
        tensors[f"base_model.model.{name}.lora_A.weight"] = a.contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = b.contiguous()
    first = next(iter(layers.values()))
    rank = first.lora_A.shape[0]
    config = LoraConfig(
        r=2 * rank,
        lora_alpha=2 * rank * first.scaling,  # PEFT scaling lora_alpha / r must equal SaLoRA's s
        target_modules=sorted(layers),  # full names: exactly these modules, nothing else matches
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model_name,
    )
    config.save_pretrained(str(out_dir))
    _save_tensors(tensors, out_dir / "adapter_model.safetensors")


def _check_target(model: nn.Module, name: str, a0: torch.Tensor, b0: torch.Tensor, out_dir: Path) -> None:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    expected = (b0.shape[0], a0.shape[1])
    if not isinstance(module, nn.Linear) or tuple(module.weight.shape) != expected:
        found = tuple(module.weight.shape) if isinstance(module, nn.Linear) else type(module).__name__
        raise IncompatibleArtifactError(
            f"SaLoRA output {out_dir} adapts {name} with shape {expected}, but the base model has {found}.",
            "Load it on the base model it was trained on (see safepeft_train.json).",
        )


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    # temp file + rename: a crash never leaves a truncated safetensors file under the final name
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the weights should be like any new file
    os.close(fd)
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
