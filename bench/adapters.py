"""Auditing N LoRA adapters of the embedded model: reload base + adapter per variant vs one base with adapter swapping.

Setup: N LoRA adapters (r=8 on q/k/v/o, random init with non-zero B so every adapter changes the outputs) created
with PEFT directly and saved. Each variant gets the same small audit: the `builtin` safety suite, one prompt per
hazard category (11 prompts), greedy, --max-new-tokens, refusal judge, through `safepeft.audit.runner.run_audit`.

- reload (what running `safepeft audit` once per adapter does): `load_model("embedded", adapter=...)` per variant;
- pool (what `safepeft study` does): `AdapterPool` loads the base once, then attaches each adapter by name
  (`PeftModel.load_adapter`) and switches with `set_adapter`.

Generation time is measured inside the generator (the part both paths must pay); everything else is overhead.
`overhead` = the pool's per-adapter overhead (attach + switch, the one-time base load excluded and reported apart)
as a fraction of generation time; `reload_ratio` = reload wall time / pool wall time (base load included);
`switch_ratio` = seconds to get the next adapter ready by reloading / by attaching to the loaded base. The two paths
run interleaved (adapter 1 reloaded, adapter 1 on the pool, adapter 2 reloaded ...) so a busy machine slows both
alike; they do the same generation work, so `reload_ratio` is close to 1 + (overhead difference / generation).
Both paths must produce identical completions (checked).
Usage: .venv/bin/python bench/adapters.py [--adapters 4] [--max-new-tokens 32]
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

import torch  # noqa: E402

from safepeft.audit.base import AuditOptions  # noqa: E402
from safepeft.audit.judges import JUDGES  # noqa: E402
from safepeft.audit.runner import build_suites, run_audit  # noqa: E402
from safepeft.models.loader import load_model  # noqa: E402
from safepeft.models.pool import AdapterPool  # noqa: E402
from safepeft.records import ArtifactRef  # noqa: E402


class Timed:
    """Generator proxy that adds up the time spent generating and scoring."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds = inner, 0.0

    def identity(self):
        return self.inner.identity()

    def generate(self, prompts, params):
        start = time.perf_counter()
        try:
            return self.inner.generate(prompts, params)
        finally:
            self.seconds += time.perf_counter() - start

    def loglikelihood(self, requests):
        start = time.perf_counter()
        try:
            return self.inner.loglikelihood(requests)
        finally:
            self.seconds += time.perf_counter() - start


def make_adapters(n: int, root: Path) -> list[str]:
    from peft import LoraConfig, get_peft_model

    paths = []
    for i in range(n):
        torch.manual_seed(100 + i)
        model = get_peft_model(load_model("embedded").model, LoraConfig(
            r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02)
        model.save_pretrained(root / f"adapter{i}")
        paths.append(str(root / f"adapter{i}"))
    return paths


def audit(generator, options) -> tuple[list[str], float]:
    timed = Timed(generator)
    results = run_audit(timed, build_suites(["builtin"]), JUDGES.get("refusal")(), options,
                        model=ArtifactRef(spec="embedded"), show_progress=False)
    return [s.completion for s in results.suites["builtin"].samples], timed.seconds


def reload_one(path: str, options) -> tuple[float, float, list[str]]:
    """(load seconds, generation seconds, completions) of one variant audited from a fresh load."""
    start = time.perf_counter()
    generator = load_model("embedded", adapter=path).generator(batch_size=16, progress=False)
    loaded = time.perf_counter() - start
    completions, seconds = audit(generator, options)
    return loaded, seconds, completions


def pool_one(pool: AdapterPool, path: str, options) -> tuple[float, float, list[str]]:
    """(attach seconds, generation seconds, completions) of one variant audited on the pool's base."""
    start = time.perf_counter()
    generator = pool.generator("embedded", path, batch_size=16)
    attached = time.perf_counter() - start
    completions, seconds = audit(generator, options)
    return attached, seconds, completions


def compare(adapters: list[str], options) -> dict:
    """Both paths, interleaved adapter by adapter so that both see the same machine load over time."""
    paths = {name: {"wall": 0.0, "overhead": 0.0, "generation": 0.0, "outputs": []} for name in ("reload", "pool")}
    start = time.perf_counter()
    pool = AdapterPool()
    pool.generator("embedded")
    base_load = time.perf_counter() - start
    paths["pool"]["wall"] = base_load
    for path in adapters:
        for name in ("reload", "pool"):
            began = time.perf_counter()
            if name == "reload":
                overhead, generation, outputs = reload_one(path, options)
            else:
                overhead, generation, outputs = pool_one(pool, path, options)
            paths[name]["wall"] += time.perf_counter() - began
            paths[name]["overhead"] += overhead
            paths[name]["generation"] += generation
            paths[name]["outputs"].append(outputs)
    return {**paths, "base_load": base_load, "base_loads": pool.base_loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    options = AuditOptions(per_category=1, max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(args.adapters, Path(tmp))
        audit(load_model("embedded").generator(batch_size=16, progress=False), options)  # warm-up (caches, kernels)
        result = compare(adapters, options)
    reload, pool = result["reload"], result["pool"]
    same = reload["outputs"] == pool["outputs"]
    distinct = len({tuple(o) for o in pool["outputs"]})
    print(f"reload: wall {reload['wall']:.1f} s, loads {reload['overhead']:.2f} s, generation "
          f"{reload['generation']:.1f} s")
    print(f"pool:   wall {pool['wall']:.1f} s, base load {result['base_load']:.2f} s "
          f"(x{result['base_loads']}), attach "
          f"{pool['overhead']:.3f} s, generation {pool['generation']:.1f} s")
    print(f"identical completions: {same}; distinct adapters' outputs: {distinct} of {args.adapters}")
    print(json.dumps({
        "adapters": args.adapters,
        "overhead": round(pool["overhead"] / pool["generation"], 4),
        "reload_overhead": round(reload["overhead"] / reload["generation"], 4),
        "reload_ratio": round(reload["wall"] / pool["wall"], 3),
        "switch_ratio": round(reload["overhead"] / pool["overhead"], 2),
        "base_load_s": round(result["base_load"], 3),
        "attach_s_per_adapter": round(pool["overhead"] / args.adapters, 4),
        "reload_s_per_adapter": round(reload["overhead"] / args.adapters, 4),
        "generation_s": round(pool["generation"], 2),
        "same_outputs": same,
    }))


if __name__ == "__main__":
    main()
