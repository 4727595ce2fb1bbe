"""Quantized variants of the embedded model: size, weight memory and bs=1 greedy generation speed.

Baseline: the fp32 transformers model (HFGenerator). Variants: `safepeft quantize` int8-dynamic and int8 (quanto),
audited through load_model + HFGenerator, and gguf-q8_0 / gguf-q4_k_m through the llama.cpp backend. Each runs the
same prompts (greedy, --max-new-tokens); tokens/s = generated tokens (by the model's own tokenizer) / wall time.
Usage: .venv/bin/python bench/quantize.py [--prompts 4] [--max-new-tokens 48] [--schemes int8-dynamic,gguf-q4_k_m]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")

from safepeft.models.loader import load_model  # noqa: E402
from safepeft.quantize.run import quantize_model  # noqa: E402
from safepeft.records.generation import GenParams  # noqa: E402

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
           "Give three tips for better sleep.", "How do I boil an egg?", "Name three primary colors."]


def speed(generator, tokenizer, prompts, params):
    generator.generate(prompts[:1], params)  # warm-up
    began = time.perf_counter()
    outputs = [generator.generate([p], params)[0] for p in prompts]
    seconds = time.perf_counter() - began
    tokens = sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)
    return round(tokens / seconds, 1)


def measure(manifest, out: Path, tokenizer, prompts, params) -> dict:
    """Speed and sizes of one quantized directory (GGUF schemes through llama.cpp, the file people deploy)."""
    if manifest["format"] == "gguf":
        from safepeft.models.llamacpp import LlamaCppGenerator

        generator = LlamaCppGenerator(str(out), n_ctx=1024, progress=False)
    else:
        generator = load_model(str(out)).generator(batch_size=1, progress=False)
    return {"tok_s": speed(generator, tokenizer, prompts, params), "size_ratio": manifest["size"]["ratio"],
            "memory_ratio": manifest["memory"]["ratio"], "mib": round(manifest["size"]["quantized_bytes"] / 2**20, 1),
            "quantize_s": manifest["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--schemes", default="int8-dynamic,int8,gguf-q8_0,gguf-q4_k_m")
    args = parser.parse_args()
    prompts, params = PROMPTS[: args.prompts], GenParams(max_new_tokens=args.max_new_tokens)
    base = load_model("embedded")
    tokenizer = base.tokenizer
    report = {"baseline_fp32_tok_s": speed(base.generator(batch_size=1), tokenizer, prompts, params)}
    with tempfile.TemporaryDirectory() as root:
        for scheme in args.schemes.split(","):
            try:
                manifest = quantize_model("embedded", scheme, Path(root) / scheme)
                report[scheme] = measure(manifest, Path(root) / scheme, tokenizer, prompts, params)
            except Exception as exc:  # a scheme whose library is missing (llama-cpp-python) is null, with the reason
                report[scheme] = {"tok_s": None, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
            else:
                report["fp32_mib"] = round(manifest["size"]["reference_fp32_bytes"] / 2**20, 1)
    report.setdefault("fp32_mib", None)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
