"""`int8` / `int4`: weight-only quantization with optimum-quanto.

Why quanto and not torchao: on this CPU-only setup (torch 2.13) torchao's int4 weight-only path needs the `mslk`
GPU kernel package (`Int4WeightOnlyConfig` raises "Requires mslk >= 1.0.0") and its wheel's native extensions do
not load, while quanto quantizes, runs and round-trips both int8 and int4 on CPU (and on CUDA) in pure torch.
int4 uses quanto's default group size (128, per group scale and shift). The LM head stays in full precision.

The directory holds quanto's serialized state dict (`model.safetensors`) and the quantization map in
`quantization.json`; `models/quantized.py` rebuilds the exact model with `optimum.quanto.requantize`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from safepeft.quantize.base import Quantizer, tensor_bytes

EXCLUDE = ["lm_head"]


class _Quanto(Quantizer):
    library = "optimum-quanto"
    format = "quanto"
    requires = (("optimum.quanto", "optimum-quanto", "'safepeft[quantize]'"),)
    weights: ClassVar[str]

    def write(self, loaded: Any, out: Path, source_gguf: Path | None) -> dict[str, Any]:
        from optimum import quanto
        from safetensors.torch import save_file

        model = loaded.model
        quanto.quantize(model, weights=getattr(quanto, self.weights), exclude=EXCLUDE)
        quanto.freeze(model)
        tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in tied}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
        return {"memory_bytes": tensor_bytes(model), "quantization_map": quanto.quantization_map(model),
                "excluded": EXCLUDE}


class QuantoInt8(_Quanto):
    """optimum-quanto int8 weight-only quantization (per-channel scales); CPU and GPU."""

    name = "int8"
    description = "optimum-quanto int8 weight-only quantization (per-channel scales); CPU and GPU."
    bits = 8
    weights = "qint8"


class QuantoInt4(_Quanto):
    """optimum-quanto int4 weight-only quantization (group-wise scale and shift); CPU and GPU."""

    name = "int4"
    description = "optimum-quanto int4 weight-only quantization (group-wise scale and shift); CPU and GPU."
    bits = 4
    weights = "qint4"
