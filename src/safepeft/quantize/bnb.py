"""`bnb-int8` / `bnb-nf4`: bitsandbytes LLM.int8() and 4-bit NormalFloat (QLoRA's NF4 with double quantization,
bf16 compute), for CUDA users. transformers serializes both; the output directory loads with `load_model(DIR)`
on a CUDA machine (its config.json carries the quantization_config). On CPU the scheme stops with a clear message.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from safepeft.quantize.base import Quantizer, tensor_bytes


class _Bnb(Quantizer):
    library = "bitsandbytes"
    format = "transformers-bnb"
    requires = (("bitsandbytes", "bitsandbytes", "bitsandbytes>=0.43"),)
    needs_cuda = True

    def config(self) -> Any:
        raise NotImplementedError

    def write(self, loaded: Any, out: Path, source_gguf: Path | None) -> dict[str, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        # bitsandbytes quantizes while loading, so the merged model goes through a temporary fp16 checkpoint.
        with tempfile.TemporaryDirectory(dir=out.parent) as merged:
            loaded.model.to(torch.float16).save_pretrained(merged)
            model = AutoModelForCausalLM.from_pretrained(merged, quantization_config=self.config(), device_map="auto")
        model.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
        return {"memory_bytes": tensor_bytes(model)}


class BnbInt8(_Bnb):
    """bitsandbytes LLM.int8() (8-bit weights, outlier features in fp16); CUDA only."""

    name = "bnb-int8"
    description = "bitsandbytes LLM.int8() (8-bit weights, outlier features in fp16); CUDA only."
    bits = 8

    def config(self) -> Any:
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_8bit=True)


class BnbNF4(_Bnb):
    """bitsandbytes 4-bit NF4 with double quantization and bf16 compute (QLoRA); CUDA only."""

    name = "bnb-nf4"
    description = "bitsandbytes 4-bit NF4 with double quantization and bf16 compute (QLoRA); CUDA only."
    bits = 4

    def config(self) -> Any:
        import torch
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16)
