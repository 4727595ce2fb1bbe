"""SafeLoRA at Llama-2-7B shapes: safepeft's factorised, streamed repair vs the official code's dense-C computation.

Setup: 32 layers x (q_proj, v_proj) = 64 modules of 4096x4096, LoRA r=8, random weights (no download). Both sides
read the same synthetic weights: a small pool of (W_base, W_aligned) pairs allocated before measuring, handed out by
reference like a page-cached memory map, so weight acquisition costs neither side anything. Each side runs in its
own subprocess (MALLOC_MMAP_THRESHOLD_ so freed buffers go back to the OS), warmed up on a small problem. Peak
memory is the rise of the peak RSS (VmHWM, reset after setup) over the RSS after setup: what the repair allocates.

- safepeft: `measure_modules` + `SafeLoRA.plan` (number mode, k=10) over all 64 modules.
- dense reference, as the official code computes it: phase 1 builds and KEEPS C = V·Vᵀ/‖V‖_F for every module
  (get_aligned_matrix), phase 2 forms C·B, C·B·A and B·A per module and takes their cosine (projected_weighted).
  It is timed on the first --dense-modules modules (default 8; 64 = all); the time for 64 is the per-module time
  x 64, and its memory for 64 is the measured peak + (64 − N) x one retained C (d² fp32), both stated as such.
  (The official code also loads both full models and deep-copies the PEFT model; none of that is counted.)
Results are compared on the modules both computed: C·B (max abs diff) and cosine similarity, and both cosines
against a float64 ground truth (the dense fp32 cosine, a d²-term fp32 reduction, is the less accurate of the two).
On a shared, oversubscribed machine, multi-threaded BLAS calls wait for descheduled threads at every barrier, which
hurts the many short calls of the factorised path far more than the few long dense GEMMs; `--threads 1` measures both
sides without that effect. The load average is printed with the results.
Usage: .venv/bin/python bench/safelora.py [--dense-modules 8] [--d 4096] [--layers 32] [--rank 8] [--threads N]
Last line: one JSON object.
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

POOL = 2  # distinct synthetic weight pairs, reused round-robin across modules


def module_names(layers: int) -> list[str]:
    return [f"model.layers.{i}.self_attn.{p}" for i in range(layers) for p in ("q_proj", "v_proj")]


def rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def setup(args):
    """Synthetic weights (pool) and adapter factors, identical in both workers."""
    import torch

    gen = torch.Generator().manual_seed(0)
    d, names = args.d, module_names(args.layers)
    pool = []
    for _ in range(POOL):
        base = torch.randn(d, d, generator=gen) * 0.02
        pool.append((base, base + torch.randn(d, d, generator=gen) * 0.002))
    weights = {"base": {}, "aligned": {}}
    factors = {}
    for i, name in enumerate(names):
        weights["base"][f"{name}.weight"], weights["aligned"][f"{name}.weight"] = pool[i % POOL]
        factors[name] = (torch.randn(args.rank, d, generator=gen) / d**0.5, torch.randn(d, args.rank, generator=gen))
    return weights, factors, names


def run_ours(args, weights, factors, names):
    from safepeft.models.weights import DictWeights
    from safepeft.repair.adapter import LoraAdapter, LoraModule
    from safepeft.repair.alignment import measure_modules
    from safepeft.repair.safelora import SafeLoRA, SafeLoRASpec

    tensors, modules = {}, {}
    for name in names:
        a_key, b_key = f"base_model.model.{name}.lora_A.weight", f"base_model.model.{name}.lora_B.weight"
        tensors[a_key], tensors[b_key] = factors[name]
        modules[name] = LoraModule(name, a_key, b_key, args.rank, 2.0)
    adapter = LoraAdapter(Path("."), {"peft_type": "LORA"}, tensors, {}, modules)
    base, aligned = DictWeights(weights["base"]), DictWeights(weights["aligned"])
    reset_peak()
    before = rss_bytes("VmRSS")
    start = time.perf_counter()
    alignments = measure_modules(adapter, base, aligned, progress=False)
    SafeLoRA().plan(alignments, adapter, SafeLoRASpec(mode="number", k=min(10, len(names))))
    seconds = time.perf_counter() - start
    peak = rss_bytes("VmHWM") - before
    scored = alignments[: args.dense_modules]
    return seconds, peak, {a.name: (a.geometry.cb, a.geometry.cosine) for a in scored}


def run_dense(args, weights, factors, names):
    import torch

    names = names[: args.dense_modules]
    reset_peak()
    before = rss_bytes("VmRSS")
    start = time.perf_counter()
    projections = []  # phase 1 (get_aligned_matrix): one d_out x d_out C per module, all kept
    for name in names:
        v = weights["aligned"][f"{name}.weight"] - weights["base"][f"{name}.weight"]
        projections.append(torch.mm(v, v.t()) / torch.norm(v))
        del v
    results = {}  # phase 2 (projected_weighted): full d_out x d_in products per module
    for name, c in zip(names, projections, strict=True):
        a, b = factors[name]
        w = torch.mm(c, b)
        projected, original = torch.mm(w, a), torch.mm(b, a)
        cos = torch.nn.functional.cosine_similarity(projected.reshape(1, -1), original.reshape(1, -1)).item()
        results[name] = (w, cos)
        del projected, original
    seconds = time.perf_counter() - start
    return seconds, rss_bytes("VmHWM") - before, results


def warm_up() -> None:
    """The same small problem through both code paths, so one-off BLAS/thread-pool start-up is timed on neither."""
    import torch

    from safepeft.repair.projection import module_geometry

    v, b, a = torch.randn(256, 256), torch.randn(256, 8), torch.randn(8, 256)
    module_geometry(v, b, a)
    c = torch.mm(v, v.t()) / torch.norm(v)
    torch.nn.functional.cosine_similarity(torch.mm(torch.mm(c, b), a).reshape(1, -1), torch.mm(b, a).reshape(1, -1))


def worker(args) -> None:
    import torch
    from safetensors.torch import save_file

    if args.threads:
        torch.set_num_threads(args.threads)
    warm_up()
    weights, factors, names = setup(args)
    seconds, peak, results = (run_ours if args.worker == "ours" else run_dense)(args, weights, factors, names)
    tensors = {f"{n}.cb": cb.contiguous() for n, (cb, _) in results.items()}
    tensors["cos"] = torch.tensor([results[n][1] for n in results], dtype=torch.float64)
    save_file(tensors, args.result)
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "modules": len(results)}))


def spawn(kind: str, args, result: Path) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--result", str(result), "--d", str(args.d),
               "--layers", str(args.layers), "--rank", str(args.rank), "--dense-modules", str(args.dense_modules),
               "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "SAFEPEFT_NO_PROGRESS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def float64_cosines(args) -> list[float]:
    """Ground truth for the compared modules: float64, cosine over the explicit d×d matrices (no r×r Grams)."""
    weights, factors, names = setup(args)
    truth = []
    for name in names[: args.dense_modules]:
        v = (weights["aligned"][f"{name}.weight"] - weights["base"][f"{name}.weight"]).double()
        a, b = (t.double() for t in factors[name])
        projected, original = (v @ (v.T @ b)) @ a, b @ a  # C·B·A up to the positive factor 1/‖V‖_F
        truth.append(float((projected * original).sum() / (projected.norm() * original.norm())))
    return truth


def compare(ours_file: Path, dense_file: Path, truth: list[float]) -> dict[str, float]:
    import torch
    from safetensors.torch import load_file

    ours, dense = load_file(ours_file), load_file(dense_file)
    cb_keys = [k for k in dense if k.endswith(".cb")]
    cb_diff = max(float((ours[k] - dense[k]).abs().max()) for k in cb_keys)
    cb_scale = max(float(dense[k].abs().max()) for k in cb_keys)
    exact = torch.tensor(truth, dtype=torch.float64)
    return {
        "cb": cb_diff, "cb_rel": cb_diff / cb_scale,
        "cos": float((ours["cos"] - dense["cos"]).abs().max()),
        "cos_ours_vs_fp64": float((ours["cos"] - exact).abs().max()),
        "cos_dense_vs_fp64": float((dense["cos"] - exact).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense-modules", type=int, default=8)
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in both workers (0 = torch default)")
    parser.add_argument("--worker", choices=["ours", "dense"])
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    total = 2 * args.layers
    args.dense_modules = min(args.dense_modules, total)
    with tempfile.TemporaryDirectory() as tmp:
        ours = spawn("ours", args, Path(tmp) / "ours.safetensors")
        dense = spawn("dense", args, Path(tmp) / "dense.safetensors")
        diff = compare(Path(tmp) / "ours.safetensors", Path(tmp) / "dense.safetensors", float64_cosines(args))
    n = args.dense_modules
    dense_seconds = dense["seconds"] / n * total
    c_bytes = args.d * args.d * 4
    dense_peak = dense["peak_bytes"] + (total - n) * c_bytes
    extrapolated = n < total
    mib = 2**20
    print(f"modules: {total} ({args.d}x{args.d}, r={args.rank}); dense reference measured on {n}")
    print(f"safepeft: {ours['seconds']:.2f} s for {total} modules, peak +{ours['peak_bytes'] / mib:.0f} MiB")
    print(f"dense:    {dense['seconds']:.2f} s for {n} modules ({dense['seconds'] / n:.2f} s/module), "
          f"peak +{dense['peak_bytes'] / mib:.0f} MiB")
    if extrapolated:
        print(f"dense, extrapolated to {total} modules: {dense_seconds:.1f} s (per-module time x {total}), "
              f"{dense_peak / mib:.0f} MiB (measured + {total - n} more retained C of {c_bytes / mib:.0f} MiB)")
    print(f"same result: max |C·B diff| = {diff['cb']:.2e} (relative {diff['cb_rel']:.2e}), max |cos diff| = "
          f"{diff['cos']:.2e}; against float64 ground truth: safepeft {diff['cos_ours_vs_fp64']:.1e}, dense fp32 "
          f"{diff['cos_dense_vs_fp64']:.1e} (a {args.d ** 2 / 1e6:.1f}M-term fp32 sum)")
    threads = args.threads or "default"
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads: {threads}")
    print(json.dumps({
        "speedup": round(dense_seconds / ours["seconds"], 1),
        "memory_ratio": round(dense_peak / ours["peak_bytes"], 1),
        "memory_ratio_measured_at_dense_modules": round(dense["peak_bytes"] / ours["peak_bytes"], 2),
        "max_abs_diff": max(diff["cb"], diff["cos"]),
        "max_abs_diff_cb": diff["cb"],
        "max_rel_diff_cb": diff["cb_rel"],
        "max_abs_diff_cos": diff["cos"],
        "cos_err_ours_vs_fp64": diff["cos_ours_vs_fp64"],
        "cos_err_dense_vs_fp64": diff["cos_dense_vs_fp64"],
        "ours_seconds": round(ours["seconds"], 3),
        "ours_peak_mib": round(ours["peak_bytes"] / mib, 1),
        "dense_seconds_measured": round(dense["seconds"], 3),
        "dense_peak_mib_measured": round(dense["peak_bytes"] / mib, 1),
        "dense_modules_measured": n,
        "modules": total,
        "extrapolated": extrapolated,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "threads": args.threads or None,
    }))


if __name__ == "__main__":
    main()
