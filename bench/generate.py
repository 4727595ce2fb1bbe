"""Batched generation vs a naive one-prompt-at-a-time `model.generate` loop on the embedded model.

Same 64 prompts, same greedy decoding (64 new tokens max, EOS stops both). Also: decode tokens/s at batch 1 next to
the memory-bandwidth bound (fp32 weight bytes read per decode step ÷ measured streaming-read bandwidth).
Usage: .venv/bin/python bench/generate.py [--n 64] [--max-new-tokens 64] [--batch-size 32] [--probe-only]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")

import torch  # noqa: E402

from safepeft.models.hf import _cache_keyword, _output_cache  # noqa: E402
from safepeft.models.loader import load_model  # noqa: E402
from safepeft.records import GenParams  # noqa: E402

TOPICS = ["bread", "bicycles", "volcanoes", "the moon", "chess", "rain", "music", "bees", "the ocean", "trains",
          "coffee", "glaciers"]
TEMPLATES = ["Explain how {t} work in two sentences.", "Write a short poem about {t}.",
             "Give three fun facts about {t}.", "What is the history of {t}?",
             "Describe {t} to a child.", "List pros and cons of {t}."]


def prompts(n: int) -> list[str]:
    return [TEMPLATES[i % len(TEMPLATES)].format(t=TOPICS[(i * 7) % len(TOPICS)]) for i in range(n)]


def naive(loaded, items: list[str], max_new_tokens: int) -> tuple[list[str], float, int]:
    tok, model = loaded.tokenizer, loaded.model
    outs, tokens = [], 0
    start = time.perf_counter()
    for prompt in items:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        new = out[0, ids["input_ids"].shape[1]:]
        tokens += int(new.numel())
        outs.append(tok.decode(new, skip_special_tokens=True))
    return outs, time.perf_counter() - start, tokens


def l3_bytes(cpus: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """Total L3 of the machine: the sum over distinct L3 instances (Linux sysfs ``cpus``), None if unknown."""
    instances: dict[str, int] = {}
    for index in cpus.glob("cpu[0-9]*/cache/index[0-9]*"):
        try:
            if (index / "level").read_text().strip() != "3":
                continue
            size = (index / "size").read_text().strip()  # e.g. "32768K"
            shared = (index / "shared_cpu_list").read_text().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        instances[shared] = int(size.rstrip("KMG")) * scale
    return sum(instances.values()) or None


PROBE_MIN_BYTES = 1 << 30
"""At least 1 GiB, and at least 8x the L3, so that no pass is served from a cache."""
PROBE_REPEATS = 5


def read_bandwidth(repeats: int = PROBE_REPEATS, min_bytes: int = PROBE_MIN_BYTES) -> dict:
    """Streaming-read bandwidth the way decode reads weights, from a buffer far larger than the caches.

    Decode at batch 1 is a matrix-vector product per weight matrix: every weight byte is read once per token and
    nothing is written back. Two probes read one buffer of that kind on all threads: a sum reduction over it, and a
    matrix-vector product with it (the very kernel decode runs, so its access pattern and threading are decode's).
    Each is the best of ``repeats`` full passes; the bandwidth is the faster probe. Decode reads at least its weight
    bytes per token with the same kernels, so decode tok/s can not exceed this bandwidth / weight bytes (a copy-based
    probe also writes, and counting only its reads undercounted: roofline 1.23 on an AVX-512 box).
    """
    l3 = l3_bytes()
    size = max(min_bytes, 8 * l3) if l3 else min_bytes
    cols = 4096
    rows = size // 4 // cols
    matrix = torch.empty(rows, cols, dtype=torch.float32).uniform_()
    vector = torch.ones(cols, dtype=torch.float32)
    nbytes = matrix.numel() * 4

    def best(run) -> float:
        run()  # first touch / warm-up
        fastest = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            fastest = min(fastest, time.perf_counter() - start)
        return nbytes / fastest / 1e9

    probes = {"sum": best(matrix.sum), "matvec": best(lambda: torch.mv(matrix, vector))}
    return {"gb_s": max(probes.values()), "probes_gb_s": {k: round(v, 2) for k, v in probes.items()},
            "method": f"best of {repeats} streaming reads of a {nbytes / 2**30:.2f} GiB fp32 buffer "
                      "(sum reduction and matrix-vector product, all threads; the faster one)",
            "buffer_bytes": nbytes, "l3_bytes": l3, "threads": torch.get_num_threads()}


def decode_tok_s_batch1(loaded, steps: int = 64) -> float:
    """Pure decode speed at batch 1: forward one token at a time with the KV cache (prefill excluded)."""
    tok, model = loaded.tokenizer, loaded.model
    ids = tok.apply_chat_template([{"role": "user", "content": "Tell me about the sea."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    # the KV cache's name changed in transformers 5.2x (`past_key_values` -> `cache`): the generator's helpers pick it
    keyword = _cache_keyword(model)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache, nxt = _output_cache(out), out.logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=nxt, use_cache=True, **{keyword: cache})
            cache, nxt = _output_cache(out), out.logits[:, -1:].argmax(-1)
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--probe-only", action="store_true", help="only the bandwidth probe (seconds, no model)")
    args = parser.parse_args()
    if args.probe_only:
        probe = read_bandwidth()
        print(json.dumps({"read_bandwidth_gb_s": round(probe["gb_s"], 2), "bandwidth_probe": probe,
                          "roofline_fraction": None, "reason": "--probe-only: no model was run"}))
        return
    loaded = load_model("embedded")
    items = prompts(args.n)
    params = GenParams(max_new_tokens=args.max_new_tokens)
    generator = loaded.generator(batch_size=args.batch_size, progress=False)
    generator.generate(items[:2], GenParams(max_new_tokens=4))  # warm-up (first call has cold-start costs)

    start = time.perf_counter()
    batched = generator.generate(items, params)
    batched_s = time.perf_counter() - start
    naive_out, naive_s, naive_tokens = naive(loaded, items, args.max_new_tokens)

    same = sum(a == b for a, b in zip(batched, naive_out, strict=True)) / len(items)
    probe = read_bandwidth()
    bandwidth = probe["gb_s"]
    weight_bytes = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    bound = bandwidth * 1e9 / weight_bytes
    decode = decode_tok_s_batch1(loaded)
    result = {
        "ratio": round(naive_s / batched_s, 2),
        "batched_prompts_per_s": round(len(items) / batched_s, 3),
        "naive_prompts_per_s": round(len(items) / naive_s, 3),
        "naive_tokens_per_s": round(naive_tokens / naive_s, 1),
        "identical_outputs_fraction": round(same, 3),
        "decode_tok_s_batch1": round(decode, 1),
        "bandwidth_bound_tok_s": round(bound, 1),
        "roofline_fraction": round(decode / bound, 3),
        "read_bandwidth_gb_s": round(bandwidth, 2),
        "bandwidth_probe": probe,
        # weights that fit in the L3 are partly read from it, where the DRAM-bandwidth bound does not hold
        "weights_exceed_l3": None if probe["l3_bytes"] is None else weight_bytes > probe["l3_bytes"],
        "weight_mb": round(weight_bytes / 1e6, 1),
        "n_prompts": len(items),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
    }
    print(f"batched {result['batched_prompts_per_s']} prompts/s vs naive {result['naive_prompts_per_s']} prompts/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
