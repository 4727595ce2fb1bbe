"""`gguf-q8_0` / `gguf-q4_k_m` / `gguf-q2_k`: llama.cpp quantization, the format of the seed study's 2/4/8-bit
models. The merged model is written as an fp32 GGUF (`gguf_export.py`), then quantized by llama.cpp itself
(`llama_model_quantize` from llama-cpp-python's bindings) into `<out>/model.gguf`. The directory loads with
`load_model(DIR)` (transformers de-quantizes it) and, faster and truer to the deployed artifact, with the
llama.cpp backend (`safepeft.models.llamacpp`), which `safepeft audit` picks for these directories.

Tensors whose rows are not a multiple of the k-quant block (256) fall back to a llama.cpp-chosen compatible type,
as in llama.cpp's own quantize tool.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, ClassVar

from safepeft.errors import SafepeftError
from safepeft.quantize.base import Quantizer
from safepeft.quantize.gguf_export import write_gguf

GGUF_FILE = "model.gguf"


class _GGUF(Quantizer):
    library = "llama.cpp"
    format = "gguf"
    requires = (("llama_cpp", "llama-cpp-python", "'safepeft[llamacpp]'"), ("gguf", "gguf", "gguf>=0.10"))
    ftype: ClassVar[str]
    """Name of the llama.cpp file type constant (LLAMA_FTYPE_MOSTLY_*)."""

    def write(self, loaded: Any, out: Path, source_gguf: Path | None) -> dict[str, Any]:
        full = out / "model-f32.gguf.tmp"
        facts = write_gguf(loaded.model, loaded.tokenizer, full, source_gguf, name=Path(loaded.spec).name)
        try:
            quantize_file(full, out / GGUF_FILE, self.ftype)
        finally:
            full.unlink(missing_ok=True)
        return {"memory_bytes": (out / GGUF_FILE).stat().st_size, "file": GGUF_FILE, "llama_cpp_ftype": self.ftype,
                **facts}


def quantize_file(source: Path, target: Path, ftype: str) -> None:
    """llama.cpp's quantizer on a GGUF file (all cores)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0:
        raise SafepeftError(f"llama.cpp could not quantize {source.name} to {ftype} (status {status}).",
                            "Re-run with --debug; llama.cpp prints the reason on stderr.")


class GGUFQ8_0(_GGUF):
    """llama.cpp Q8_0: 8-bit blocks of 32 with one fp16 scale (~8.5 bits/weight)."""

    name = "gguf-q8_0"
    description = "llama.cpp Q8_0: 8-bit blocks of 32 with one fp16 scale (~8.5 bits/weight)."
    bits = 8
    ftype = "Q8_0"


class GGUFQ4_K_M(_GGUF):
    """llama.cpp Q4_K_M: 4-bit k-quants, sensitive tensors at 6 bits (~4.8 bits/weight)."""

    name = "gguf-q4_k_m"
    description = "llama.cpp Q4_K_M: 4-bit k-quants, sensitive tensors at 6 bits (~4.8 bits/weight)."
    bits = 4
    ftype = "Q4_K_M"


class GGUFQ2_K(_GGUF):
    """llama.cpp Q2_K: 2-bit k-quants with 4-bit scales (~2.6-3.4 bits/weight)."""

    name = "gguf-q2_k"
    description = "llama.cpp Q2_K: 2-bit k-quants with 4-bit scales (~2.6-3.4 bits/weight)."
    bits = 2
    ftype = "Q2_K"
