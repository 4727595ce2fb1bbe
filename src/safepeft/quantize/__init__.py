"""Post-training quantization: `safepeft quantize --scheme NAME` names an entry here.

Each scheme writes a directory that `load_model(DIR)` / `--model DIR` loads (a `.gguf` inside for GGUF schemes)
with a `quantization.json` manifest (scheme, bits, library, sizes, source provenance).
"""

from __future__ import annotations

from safepeft.registry import Registry

QUANTIZERS: Registry = Registry("quantizer", "safepeft list quantizers")
QUANTIZERS.register("int8-dynamic", "safepeft.quantize.int8_dynamic:Int8Dynamic")
QUANTIZERS.register("int8", "safepeft.quantize.quanto:QuantoInt8")
QUANTIZERS.register("int4", "safepeft.quantize.quanto:QuantoInt4")
QUANTIZERS.register("gguf-q8_0", "safepeft.quantize.gguf:GGUFQ8_0")
QUANTIZERS.register("gguf-q4_k_m", "safepeft.quantize.gguf:GGUFQ4_K_M")
QUANTIZERS.register("gguf-q2_k", "safepeft.quantize.gguf:GGUFQ2_K")
QUANTIZERS.register("bnb-int8", "safepeft.quantize.bnb:BnbInt8")
QUANTIZERS.register("bnb-nf4", "safepeft.quantize.bnb:BnbNF4")
