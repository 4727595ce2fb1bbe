"""Read a saved PEFT LoRA adapter as named modules, and write a repaired copy atomically.

Modules are keyed by their NAME in the model (`model.layers.0.self_attn.q_proj`), recovered from PEFT's tensor keys
(`base_model.model.<name>.lora_A.weight`), never by iteration order. Each module's rank comes from its tensors and is
checked against `r` / `rank_pattern`; its scaling uses `lora_alpha` / `alpha_pattern` / `use_rslora` exactly as PEFT
resolves them. Adapters these methods cannot repair faithfully (non-LoRA, DoRA, LoRA on embeddings or convolutions,
trainable LoRA biases) are refused with a clear error instead of being half-repaired.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.safety import CONVERT_HINT, PICKLE_SUFFIXES, check_finite, pickled_files
from safepeft.store.atomic import atomic_dir

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
REPORT_FILE = "safepeft_repair.json"
PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<name>.+)\.lora_(?P<which>[AB])\.weight$")
_UNSUPPORTED = {
    "lora_magnitude_vector": "a DoRA adapter (use_dora=True); SafeLoRA/SPLoRA are defined for plain LoRA only",
    "lora_embedding_": "LoRA on an embedding layer; only Linear layers can be projected",
    ".lora_B.bias": "a LoRA adapter with trainable biases (lora_bias=True)",
}


@dataclass(frozen=True)
class LoraModule:
    """One adapted Linear layer: ΔW = scaling · B·A with B (d_out, r) and A (r, d_in)."""

    name: str
    a_key: str
    b_key: str
    rank: int
    scaling: float
    fan_in_fan_out: bool = False

    @property
    def weight_name(self) -> str:
        return f"{self.name}.weight"


@dataclass
class LoraAdapter:
    """A LoRA adapter directory held in memory (adapters are small: tens of MB at 7B scale)."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)
    modules: dict[str, LoraModule] = field(default_factory=dict)

    def a(self, name: str) -> Any:
        return self.tensors[self.modules[name].a_key]

    def b(self, name: str) -> Any:
        return self.tensors[self.modules[name].b_key]


def load_lora_adapter(path: str | os.PathLike[str]) -> LoraAdapter:
    """Read adapter_config.json + adapter_model.safetensors and index the LoRA modules by name."""
    from safetensors import safe_open

    path = Path(path)
    config = _read_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        pickles = pickled_files(path)
        if pickles:  # the same words as every other command (models.safety.require_safetensors)
            raise IncompatibleArtifactError(f"The adapter {path} holds only pickled weights ({', '.join(pickles)}).",
                                            CONVERT_HINT)
        raise IncompatibleArtifactError(
            f"The adapter {path} has no {WEIGHTS_FILE}.",
            "Save the adapter with PEFT's save_pretrained(safe_serialization=True).",
        )
    with safe_open(str(weights), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = dict(handle.metadata() or {})
    # A NaN adapter would give every module a perfect (or meaningless) score and exit 0: refuse it up front.
    check_finite(tensors.items(), f"adapter {path}")
    adapter = LoraAdapter(path, config, tensors, metadata)
    adapter.modules = _index_modules(adapter)
    return adapter


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        raise IncompatibleArtifactError(
            f"{path} is not a PEFT adapter directory (no {CONFIG_FILE}).",
            "Pass the directory written by `safepeft train` or PEFT's save_pretrained.",
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IncompatibleArtifactError(f"{file} is not valid JSON ({exc}).", "Re-save the adapter.") from exc
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "LORA":
        raise IncompatibleArtifactError(
            f"The adapter {path} is not a LoRA adapter (peft_type {peft_type or 'missing'}).",
            "SafeLoRA and SPLoRA edit LoRA's B matrices; train a LoRA adapter (safepeft train --method lora).",
        )
    if config.get("use_dora"):
        raise IncompatibleArtifactError(
            f"The adapter {path} is a DoRA adapter (use_dora=True).",
            "SafeLoRA/SPLoRA are defined for plain LoRA; DoRA's magnitude vector would make the projection wrong.",
        )
    return config


def _index_modules(adapter: LoraAdapter) -> dict[str, LoraModule]:
    from peft.utils.other import get_pattern_key

    config = adapter.config
    halves: dict[str, dict[str, str]] = {}
    for key in adapter.tensors:
        for marker, what in _UNSUPPORTED.items():
            if marker in key:
                raise IncompatibleArtifactError(f"The adapter {adapter.path} contains {what} ({key}).",
                                                "Repair supports LoRA on Linear layers only.")
        match = _LORA_KEY.match(key)
        if match:
            name = match["name"].removeprefix(PEFT_PREFIX)
            halves.setdefault(name, {})[match["which"]] = key
    if not halves:
        raise IncompatibleArtifactError(f"The adapter {adapter.path} holds no LoRA weights.",
                                        "Pass a trained LoRA adapter directory.")
    modules = {}
    for name in sorted(halves):
        keys = halves[name]
        if set(keys) != {"A", "B"}:
            raise IncompatibleArtifactError(f"The adapter {adapter.path} has only lora_{''.join(keys)} for {name}.",
                                            "The adapter file is incomplete; re-save it.")
        a, b = adapter.tensors[keys["A"]], adapter.tensors[keys["B"]]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise IncompatibleArtifactError(
                f"{name}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} are not a Linear LoRA pair.",
                "Repair supports LoRA on Linear layers only (no convolutions).",
            )
        rank = int(a.shape[0])
        rank_pattern = config.get("rank_pattern") or {}
        alpha_pattern = config.get("alpha_pattern") or {}
        declared = rank_pattern.get(get_pattern_key(rank_pattern.keys(), name), config.get("r", rank))
        if int(declared) != rank:
            raise IncompatibleArtifactError(
                f"{name}: adapter_config.json declares rank {declared} but lora_A has {rank} rows.",
                "The config does not belong to these weights; re-save the adapter.",
            )
        alpha = float(alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), name), config.get("lora_alpha", rank)))
        scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        modules[name] = LoraModule(name, keys["A"], keys["B"], rank, scaling, bool(config.get("fan_in_fan_out")))
    return modules


def prepare_output(out: Path, adapter_path: Path, overwrite: bool) -> None:
    """Refuse to clobber the input adapter, or an existing output unless asked to."""
    if out.resolve() == adapter_path.resolve():
        raise ConfigError(f"--out {out} is the input adapter directory.", "Write the repaired adapter elsewhere.")
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"The output {out} already exists.", "Pick a new --out directory or pass --overwrite.")


def write_adapter(out: Path, adapter: LoraAdapter, tensors: dict[str, Any], config: dict[str, Any],
                  report_json: str) -> None:
    """Write the repaired adapter (+ the source dir's other small files) to a temp dir, then rename it into place."""
    from safetensors.torch import save_file

    check_finite(tensors.items(), f"repaired adapter for {out}",
                 "The repair produced NaN or Inf (check its hyper-parameters); nothing was written.")
    with atomic_dir(out) as tmp:
        for item in adapter.path.iterdir():
            if item.is_file() and item.name not in (CONFIG_FILE, WEIGHTS_FILE, REPORT_FILE) and \
                    item.suffix.lower() not in PICKLE_SUFFIXES:
                shutil.copy2(item, tmp / item.name)
        contiguous = {key: value.contiguous().cpu() for key, value in tensors.items()}
        save_file(contiguous, str(tmp / WEIGHTS_FILE), metadata=adapter.metadata or {"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / REPORT_FILE).write_text(report_json + "\n", encoding="utf-8")
