"""`int8-dynamic`: torch dynamic quantization (Linear weights int8 per output channel, activations quantized on the
fly per batch). CPU only: torch's dynamic int8 kernels (fbgemm / onednn) are CPU kernels.

Weights are stored as int8 + one fp32 scale per output channel (symmetric, scale = max|w| / 127), which is what
torch's per-channel weight observer would produce up to its [-128, 127] range choice; `models/quantized.py`
rebuilds torch's dynamic Linear from them exactly. The LM head stays fp32: it is tied to the embeddings in most
small models, and quantizing it unties and degrades them for little gain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepeft.quantize.base import Quantizer

EXCLUDE = ("lm_head",)


def quantize_weight(weight: Any) -> tuple[Any, Any]:
    """(int8 (out, in), fp32 scale (out,)): symmetric per-output-channel quantization."""
    import torch

    w = weight.detach().float()  # (out, in)
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


class Int8Dynamic(Quantizer):
    """torch dynamic quantization: int8 Linear weights, activations quantized at run time (CPU)."""

    name = "int8-dynamic"
    description = "torch dynamic quantization: int8 Linear weights, activations quantized at run time (CPU)."
    bits = 8
    library = "torch"
    format = "torch-int8-dynamic"

    def check(self, device: str) -> None:
        super().check(device)
        if device.startswith("cuda"):
            from safepeft.errors import ConfigError

            raise ConfigError("The int8-dynamic scheme runs on CPU only.", "Pass --device cpu, or use --scheme int8.")

    def write(self, loaded: Any, out: Path, source_gguf: Path | None) -> dict[str, Any]:
        import torch
        from safetensors.torch import save_file

        model = loaded.model
        tensors: dict[str, Any] = {}
        quantized: list[str] = []
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not name.endswith(EXCLUDE):
                q, scale = quantize_weight(module.weight)
                tensors[f"{name}.weight_int8"], tensors[f"{name}.weight_scale"] = q, scale
                quantized.append(f"{name}.weight")
        tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
        for key, value in model.state_dict().items():
            if key not in quantized and key not in tied:
                tensors[key] = value.detach().contiguous()
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
        memory = sum(t.numel() * t.element_size() for t in tensors.values())
        return {"memory_bytes": memory, "quantized_tensors": len(quantized), "excluded": list(EXCLUDE)}
