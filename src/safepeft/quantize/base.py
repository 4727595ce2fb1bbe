"""The quantizer contract, and size accounting shared by the schemes."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from safepeft.errors import ConfigError, missing_dependency

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin")


class Quantizer(ABC):
    """A post-training quantization scheme. Subclasses write a loadable directory from a merged fp32 model."""

    name: ClassVar[str]
    description: ClassVar[str]
    bits: ClassVar[float]
    """Bits per quantized weight (nominal; k-quant mixes report their headline width)."""
    library: ClassVar[str]
    """The library doing the quantization (torch, optimum-quanto, llama.cpp, bitsandbytes)."""
    format: ClassVar[str]
    """On-disk format name recorded in quantization.json (read by `safepeft.models.quantized`)."""
    requires: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    """(import name, package name, pip install argument) of optional packages."""
    needs_cuda: ClassVar[bool] = False

    def check(self, device: str) -> None:
        """Fail early, before any model is loaded, when a dependency or the hardware is missing."""
        if self.needs_cuda and not device.startswith("cuda"):
            raise ConfigError(
                f"The {self.name} scheme needs a CUDA GPU (bitsandbytes {self.bits:g}-bit kernels); the model would "
                f"run on {device}.",
                "On CPU use --scheme int8 / int4 (optimum-quanto), int8-dynamic or gguf-q8_0 / gguf-q4_k_m / "
                "gguf-q2_k.",
            )
        for module, package, pip_spec in self.requires:
            if importlib.util.find_spec(module) is None:
                raise missing_dependency(package, f"The {self.name} scheme", pip_spec)

    def device(self, requested: str) -> str:
        """Where the model is loaded for quantizing (CPU unless the scheme needs CUDA)."""
        if requested != "auto":
            return requested
        import torch

        return "cuda" if self.needs_cuda and torch.cuda.is_available() else "cpu"

    @abstractmethod
    def write(self, loaded: Any, out: Path, source_gguf: Path | None) -> dict[str, Any]:
        """Quantize ``loaded.model`` (fp32, adapter merged) and write weights + tokenizer into ``out``.

        ``source_gguf`` is the GGUF the base model came from, if any (its tokenizer metadata can be reused).
        Returns manifest fields, at least ``memory_bytes`` (the quantized model's weight memory).
        """

    def version(self) -> str | None:
        from importlib import metadata

        package = {"torch": "torch", "optimum-quanto": "optimum-quanto", "llama.cpp": "llama-cpp-python",
                   "bitsandbytes": "bitsandbytes"}.get(self.library)
        try:
            return metadata.version(package) if package else None
        except metadata.PackageNotFoundError:
            return None


def tensor_bytes(module: Any) -> int:
    """Bytes held by a module's state (parameters, buffers, packed quantized weights), shared storage once."""
    import torch

    seen: set[int] = set()
    total = 0

    def visit(value: Any) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            key = value.untyped_storage().data_ptr() if not value.is_quantized else value.data_ptr()
            if key not in seen:
                seen.add(key)
                total += value.numel() * value.element_size()
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item)

    for value in module.state_dict(keep_vars=False).values():
        visit(value)
    return total


def files_bytes(directory: Path) -> int:
    """Size of the weight files in a directory."""
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
