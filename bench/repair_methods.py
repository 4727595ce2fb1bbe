"""The repair menu at Llama-2-7B shapes: every method's time and memory against SafeLoRA's, in the same run.

Setup (as bench/safelora.py): 32 layers x (q_proj, v_proj) = 64 modules of 4096x4096, LoRA r=8, random weights from
a pool of POOL (W_base, W_aligned) pairs allocated before measuring and handed out by reference (like a page-cached
memory map), so reading weights costs no method anything. The synthetic "model" holds only those 64 matrices.
Each method runs in its own subprocess through the public driver (`repair_adapter` / `harden_model`), including
writing its output to a temporary directory on disk:

- safelora (baseline): number mode, k=10 -> adapter.
- resta: beta=0.5 -> full model (exact); resta-lora: k=16 randomized SVD -> adapter.
- safemerge: linear merge with a random safety LoRA of rank 8 -> adapter.
- lox: k=6, alpha=1.25, randomized SVD -> full model.
- safedelta: scale=0.1 with precomputed input Grams (identity + rank-64, built before measuring). Its curvature
  step (a forward pass of the aligned model over safety data) is not part of this bench; its selection and
  compensation are O(d³) per module (a Cholesky inverse and one d_out×d_in×d_in product), reported as measured.

Peak memory is the rise of VmHWM over the RSS after setup. `--layers N` runs N layers (2N modules) on a small box;
the JSON then also gives per-module figures. Usage: .venv/bin/python bench/repair_methods.py [--layers 32]
[--d 4096] [--rank 8] [--threads 1] [--methods safelora,resta,...]. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POOL = 2
METHODS = ["safelora", "resta", "resta-lora", "safemerge", "lox", "safedelta"]


def rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def names(layers: int) -> list[str]:
    return [f"model.layers.{i}.self_attn.{p}" for i in range(layers) for p in ("q_proj", "v_proj")]


def write_adapter(path: Path, args, seed: int) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name in names(args.layers):
        tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(args.rank, args.d, generator=gen) / args.d**0.5
        tensors[f"base_model.model.{name}.lora_B.weight"] = torch.randn(args.d, args.rank, generator=gen) * 0.01
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": args.rank, "lora_alpha": 2 * args.rank, "target_modules": ["q_proj", "v_proj"]}
    (path / "adapter_config.json").write_text(json.dumps(config))


def worker(args) -> None:
    import torch

    from safepeft.models.weights import DictWeights
    from safepeft.repair import harden_model, repair_adapter

    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    pool = []
    for _ in range(POOL):
        base = torch.randn(args.d, args.d, generator=gen) * 0.02
        pool.append((base, base + torch.randn(args.d, args.d, generator=gen) * 0.002))
    base = DictWeights({f"{n}.weight": pool[i % POOL][0] for i, n in enumerate(names(args.layers))}, "base")
    aligned = DictWeights({f"{n}.weight": pool[i % POOL][1] for i, n in enumerate(names(args.layers))}, "aligned")
    work = Path(args.work)
    common = {"base": base, "aligned": aligned, "adapter": work / "adapter", "progress": False}
    inputs = None
    if args.worker == "safedelta":
        low = torch.randn(args.d, 64, generator=gen)
        grams = [torch.eye(args.d) * 10 + low @ low.T, torch.eye(args.d) * 5 + 2 * low @ low.T]
        inputs = {"grams": {n: grams[i % 2] for i, n in enumerate(names(args.layers))}}
    if args.worker == "safemerge":
        inputs = {"safety_adapter": work / "safety"}
    specs = {"safelora": ("safelora", {"mode": "number", "k": min(10, 2 * args.layers)}),
             "resta": ("resta", {"beta": 0.5}),
             "resta-lora": ("resta", {"beta": 0.5, "output": "lora", "k": 16, "lora_targets": "adapter",
                                      "svd": "randomized"}),
             "safemerge": ("safemerge", {"mode": "number", "k": min(10, 2 * args.layers)}),
             "safedelta": ("safedelta", {"scale": 0.1})}
    out = work / f"out-{args.worker}"
    import peft.utils.other  # noqa: F401 - imported by the adapter reader; one-off import cost is timed on no method

    from safepeft.models import fingerprint  # noqa: F401
    from safepeft.repair import HARDEN_METHODS, REPAIR_METHODS

    for name in REPAIR_METHODS.names():
        REPAIR_METHODS.get(name)
    HARDEN_METHODS.get("lox")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS (after setup)
    start_rss = rss_bytes("VmRSS")
    started = time.perf_counter()
    if args.worker == "lox":
        harden_model("lox", base=base, aligned=aligned, out=out, spec={"k": 6, "alpha": 1.25, "svd": "randomized"},
                     progress=False)
    else:
        method, spec = specs[args.worker]
        repair_adapter(method, out=out, spec=spec, inputs=inputs, **common)
    seconds = time.perf_counter() - started
    peak = rss_bytes("VmHWM") - start_rss
    print(json.dumps({"seconds": seconds, "peak_rise_bytes": peak}))


def spawn(kind: str, args, work: Path) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--work", str(work), "--d", str(args.d),
               "--layers", str(args.layers), "--rank", str(args.rank), "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "SAFEPEFT_NO_PROGRESS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--worker")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    methods = [m for m in args.methods.split(",") if m]
    if "safelora" not in methods:
        methods.insert(0, "safelora")
    modules = 2 * args.layers
    with tempfile.TemporaryDirectory(prefix="bench-repair-") as tmp:
        work = Path(tmp)
        write_adapter(work / "adapter", args, seed=1)
        write_adapter(work / "safety", args, seed=2)
        results = {}
        for method in methods:
            results[method] = spawn(method, args, work)
            for leftover in work.glob(f"out-{method}*"):
                subprocess.run(["rm", "-rf", str(leftover)], check=True)
            r = results[method]
            print(f"{method:>11}: {r['seconds']:8.2f} s ({r['seconds'] / modules:.3f} s/module), peak rise "
                  f"{r['peak_rise_bytes'] / 2**20:8.1f} MiB", file=sys.stderr)
    baseline = results["safelora"]
    summary = {"bench": "repair_methods", "layers": args.layers, "modules": modules, "d": args.d, "rank": args.rank,
               "threads": args.threads, "load_average": round(os.getloadavg()[0], 2), "methods": {}}
    for method, r in results.items():
        time_ratio = r["seconds"] / baseline["seconds"]
        memory_ratio = r["peak_rise_bytes"] / max(baseline["peak_rise_bytes"], 1)
        summary["methods"][method] = {
            "seconds": round(r["seconds"], 3), "seconds_per_module": round(r["seconds"] / modules, 4),
            "peak_rise_mib": round(r["peak_rise_bytes"] / 2**20, 1), "time_vs_safelora": round(time_ratio, 2),
            "memory_vs_safelora": round(memory_ratio, 2), "within_2x": time_ratio <= 2 and memory_ratio <= 2}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
