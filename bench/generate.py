"""Batched generation vs a naive one-prompt-at-a-time `model.generate` loop on the embedded model.

Same 64 prompts, same greedy decoding (64 new tokens max, EOS stops both). Also: decode tokens/s at batch 1 next to
the memory-bandwidth bound (fp32 weight bytes read per decode step ÷ measured streaming-read bandwidth).
Usage: .venv/bin/python bench/generate.py [--n 64] [--max-new-tokens 64] [--batch-size 32]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")

import torch  # noqa: E402

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


BANDWIDTH_PROBE = "streaming read: sum() over a 1 GiB fp32 buffer (larger than any cache), all threads, best of 5"


def read_bandwidth_gb_s() -> float:
    """Bytes read per second the way decode reads weights: one streaming pass over a buffer far larger than the
    caches, on every thread, writing nothing back. (A copy also writes, and counting only its reads undercounted
    the bandwidth, so decode could beat the "bound": roofline 1.23 on an AVX-512 box.)"""
    src = torch.empty(1024 * 1024 * 1024 // 4, dtype=torch.float32).uniform_()
    src.sum()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        src.sum()
        best = min(best, time.perf_counter() - start)
    return src.numel() * 4 / best / 1e9


def decode_tok_s_batch1(loaded, steps: int = 64) -> float:
    """Pure decode speed at batch 1: forward one token at a time with the KV cache (prefill excluded)."""
    tok, model = loaded.tokenizer, loaded.model
    ids = tok.apply_chat_template([{"role": "user", "content": "Tell me about the sea."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    loaded = load_model("embedded")
    items = prompts(args.n)
    params = GenParams(max_new_tokens=args.max_new_tokens)
    generator = loaded.generator(batch_size=args.batch_size, progress=False)
    generator.generate(items[:2], GenParams(max_new_tokens=4))  # warm-up (first call has cold-start costs)

    start = time.perf_counter()
    batched = generator.generate(items, params)
    batched_s = time.perf_counter() - start
    naive_out, naive_s, naive_tokens = naive(loaded, items, args.max_new_tokens)

    same = sum(a == b for a, b in zip(batched, naive_out)) / len(items)
    bandwidth = read_bandwidth_gb_s()
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
        "bandwidth_probe": BANDWIDTH_PROBE,
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
