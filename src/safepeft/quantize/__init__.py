"""Post-training quantization: `safepeft quantize --scheme NAME` names an entry here.

Each scheme writes a directory that `load_model(DIR)` / `--model DIR` loads (a `.gguf` inside for GGUF schemes)
with a `quantization.json` manifest (scheme, bits, library, sizes, source provenance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.quantize.base import Quantizer

QUANTIZERS: Registry[type[Quantizer]] = Registry("quantizer", "safepeft list quantizers",
                                                 base="safepeft.quantize.base:Quantizer")
QUANTIZERS.register("int8-dynamic", "safepeft.quantize.int8_dynamic:Int8Dynamic")
QUANTIZERS.register("int8", "safepeft.quantize.quanto:QuantoInt8")
QUANTIZERS.register("int4", "safepeft.quantize.quanto:QuantoInt4")
QUANTIZERS.register("gguf-q8_0", "safepeft.quantize.gguf:GGUFQ8_0")
QUANTIZERS.register("gguf-q4_k_m", "safepeft.quantize.gguf:GGUFQ4_K_M")
QUANTIZERS.register("gguf-q2_k", "safepeft.quantize.gguf:GGUFQ2_K")
QUANTIZERS.register("bnb-int8", "safepeft.quantize.bnb:BnbInt8")
QUANTIZERS.register("bnb-nf4", "safepeft.quantize.bnb:BnbNF4")
