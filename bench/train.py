"""Seconds per optimizer step and peak RSS of each fine-tuning method on the embedded model, batch 4 x 128 tokens.

For every method, the baseline is the same PEFT model trained by a plain loop that passes ``labels`` to the model
(transformers computes logits for every position); safepeft is ``finetune.trainer.train`` (logits only where a
label exists). Each row's conversation is 128 tokens with the second half as the assistant turn. Prints a table,
then ONE JSON line. Usage: python bench/train.py [--steps 4] [--methods lora,ia3,...]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager

import torch

from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.base import IGNORE_INDEX, Example, PrepareContext, collate
from safepeft.finetune.dataset import TrainData
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.trainer import TrainSpec, train
from safepeft.models.loader import load_model

BATCH, LENGTH = 4, 128
DEFAULT_METHODS = "lora,ia3,prompt-tuning,p-tuning"


def release_memory() -> None:
    """Free Python garbage and hand freed heap pages back to the OS, so the next peak starts from a clean RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: peaks may include memory the previous measurement freed but kept
        pass


@contextmanager
def peak_rss():
    """Yield a dict whose 'mib' is the highest resident set size seen while the block ran (5 ms sampling)."""
    release_memory()
    page = os.sysconf("SC_PAGE_SIZE")
    result, stop = {"mib": 0.0}, threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with open("/proc/self/statm") as handle:
                result["mib"] = max(result["mib"], int(handle.read().split()[1]) * page / 2**20)
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


def examples(tokenizer, n: int) -> list[Example]:
    """n rows of exactly LENGTH tokens cut from a long text; the second half is labelled."""
    text = " ".join(f"Question {i}: what is {i} plus {i + 3}? Answer: {2 * i + 3}." for i in range(400))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(n):
        chunk = tuple(ids[i * LENGTH : (i + 1) * LENGTH])
        rows.append(Example(chunk, (IGNORE_INDEX,) * (LENGTH // 2) + chunk[LENGTH // 2 :], f"bench:{i}"))
    return rows


def baseline(name: str, steps: int) -> tuple[float, float]:
    """Plain loop: PEFT model, loss from transformers with labels (full logits)."""
    with peak_rss() as rss:
        loaded = load_model("embedded")
        method = FINETUNE_METHODS.get(name)
        rows = examples(loaded.tokenizer, BATCH * steps)
        model = method.prepare(PrepareContext(loaded, rows, 0, BATCH), method.make_spec())
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=method.default_learning_rate)
        model.train()
        started = time.perf_counter()
        for step in range(steps):
            batch = collate(rows[step * BATCH : (step + 1) * BATCH], loaded.tokenizer.pad_token_id)
            model(**batch, use_cache=False).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seconds = (time.perf_counter() - started) / steps
    del model, loaded, optimizer
    return seconds, rss["mib"]


def safepeft(name: str, steps: int) -> tuple[float, float]:
    with peak_rss() as rss, tempfile.TemporaryDirectory() as out:
        loaded = load_model("embedded")
        rows = examples(loaded.tokenizer, BATCH * steps)
        data = TrainData(DataSpec(source="bench"), [], rows)
        spec = TrainSpec(method=name, max_steps=steps, batch_size=BATCH, max_length=LENGTH,
                         checkpoint_every=10**6, schedule="constant")
        record = train(loaded, data, spec, FINETUNE_METHODS.get(name).make_spec(), out, show_progress=False).record
    return record.wall_time_s / steps, rss["mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    args = parser.parse_args()
    load_model("embedded")  # convert/cache the GGUF once, outside the measurements
    results = {}
    for name in args.methods.split(","):
        base_s, base_rss = baseline(name, args.steps)
        ours_s, ours_rss = safepeft(name, args.steps)
        results[name] = {"baseline_s_per_step": round(base_s, 3), "safepeft_s_per_step": round(ours_s, 3),
                         "baseline_peak_rss_mib": round(base_rss), "safepeft_peak_rss_mib": round(ours_rss)}
        print(f"{name:14s} baseline {base_s:6.2f} s/step {base_rss:7.0f} MiB | safepeft {ours_s:6.2f} s/step "
              f"{ours_rss:7.0f} MiB", flush=True)
    print(json.dumps({"bench": "train", "batch": BATCH, "tokens": LENGTH, "steps": args.steps,
                      "threads": torch.get_num_threads(), "methods": results}))


if __name__ == "__main__":
    main()
