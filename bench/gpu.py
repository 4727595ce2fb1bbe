"""The GPU path, measured (issue #16): one prepared check for one modern GPU, within --budget-s (7 min), no hub.

Needs only torch, transformers, peft and accelerate (plus safepeft). Sections, in order, each skipped with a reason
once --budget-s is spent (the last JSON line then holds what was measured):

- generation: the embedded model in bf16, safepeft's batched generator at batch 1, 32 and 256 (64 greedy tokens per
  prompt) vs a naive one-prompt-at-a-time ``model.generate`` loop. The naive loop is batch 1 whatever the batch size,
  so it is timed once, on 8 prompts, and each ratio is batched tokens/s ÷ that rate. Tokens are counted by
  re-tokenising the outputs (the generator returns text), the naive loop's by its new ids.
- bbq: safepeft's shared-prefix log-likelihood scoring of the built-in BBQ items (3 per dimension), items/s.
- lora7b: random weights at Llama-2-7B shapes (hidden 4096, 32 layers, intermediate 11008, vocab 32000) built on
  the GPU in bf16, peft LoRA r=8 on q_proj and v_proj, AdamW, batch 4 x 512 tokens: optimizer steps/s over 5 steps
  after one warm-up step, and the peak of allocated GPU memory.
- safelora7b: `measure_modules` + `SafeLoRA.plan` (number mode, k=10) over 64 modules of 4096x4096 with r=8 factors,
  built as bench/safelora.py builds them (its pool of two weight pairs), bf16 weights on the GPU: seconds and peak.
- demo: `safepeft demo --quick` in a subprocess (device auto, so CUDA), into a temporary directory, wall seconds.

Without CUDA every figure is null with the reason "CUDA not available" and nothing is loaded (a CPU box must not
allocate 7B shapes). `--smoke` runs every section except the demo on tiny shapes and the tiny in-process model, on
`--device` (cpu is fine): its figures mean nothing, it only proves the code paths before device time is spent.
Usage: python bench/gpu.py [--budget-s 420] [--smoke --device cpu]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCHES = (1, 32, 256)
SECTIONS: dict[str, tuple[str, ...]] = {
    "generation": tuple(f"{kind}_b{b}" for b in BATCHES for kind in ("gen_tok_s", "gen_ratio_vs_naive"))
    + ("gen_naive_tok_s",),
    "bbq": ("bbq_items_per_s",),
    "lora7b": ("lora7b_steps_per_s", "lora7b_peak_gib"),
    "safelora7b": ("safelora7b_seconds", "safelora7b_peak_gib"),
    "demo": ("demo_quick_seconds",),
}
KEYS = tuple(key for keys in SECTIONS.values() for key in keys)
GIB = 2**30


@dataclass(frozen=True)
class Shapes:
    """Model shapes for the 7B sections; the smoke run's are tiny and odd (no coinciding dimensions)."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    batch: int
    length: int
    new_tokens: int  # generation
    batches: tuple[int, ...]  # generation batch sizes, reported under the BATCHES keys


SEVEN_B = Shapes(4096, 32, 11008, 32000, 32, 4, 512, 64, BATCHES)
SMOKE = Shapes(64, 2, 172, 131, 4, 2, 16, 4, (1, 2, 3))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / GIB, 2) if device.startswith("cuda") else None


def _load(device: str, smoke: bool, tmp: Path) -> Any:
    from safepeft.models.loader import load_model

    if smoke:
        from safepeft.models.tiny import save_tiny_model

        return load_model(str(save_tiny_model(tmp / "tiny", initializer_range=0.5)), device=device)
    return load_model("embedded", device=device, dtype="bfloat16")


def generation(device: str, shapes: Shapes, smoke: bool, tmp: Path, left: Callable[[], float]) -> dict[str, Any]:
    import torch
    from generate import prompts  # bench/generate.py: the CPU bench's prompts, so the figures compare

    from safepeft.records import GenParams

    loaded = _load(device, smoke, tmp)
    tok, model = loaded.tokenizer, loaded.model
    params = GenParams(max_new_tokens=shapes.new_tokens)

    def count(texts: list[str]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    out: dict[str, Any] = {}
    tokens, start = 0, time.perf_counter()
    for prompt in prompts(2 if smoke else 8):
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True).to(device)
        with torch.inference_mode():
            new = model.generate(**ids, max_new_tokens=shapes.new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)[0, ids["input_ids"].shape[1]:]
        tokens += int(new.numel())
    _sync(device)
    naive = tokens / (time.perf_counter() - start)
    out["gen_naive_tok_s"] = round(naive, 1)
    for key, batch in zip(BATCHES, shapes.batches, strict=True):
        if left() <= 0:
            break  # the remaining batch sizes are reported as over budget
        generator = loaded.generator(batch_size=batch, progress=False)
        items = prompts(batch)
        generator.generate(items[:1], GenParams(max_new_tokens=2))  # warm-up: first-call costs timed on neither
        start = time.perf_counter()
        texts = generator.generate(items, params)
        _sync(device)
        rate = count(texts) / (time.perf_counter() - start)
        out[f"gen_tok_s_b{key}"], out[f"gen_ratio_vs_naive_b{key}"] = round(rate, 1), round(rate / naive, 2)
    return out


def bbq(device: str, shapes: Shapes, smoke: bool, tmp: Path, left: Callable[[], float]) -> dict[str, Any]:
    from safepeft.audit.fairness.builtin import builtin_records
    from safepeft.audit.fairness.loader import items_from_records, select
    from safepeft.audit.fairness.prompts import loglikelihood_requests

    generator = _load(device, smoke, tmp).generator(batch_size=16, progress=False)
    items, _ = items_from_records(builtin_records(), "builtin")
    items = select(items, 1 if smoke else 3, None, seed=0)
    requests = [r for item in items for r in loglikelihood_requests(item, None)]
    generator.loglikelihood(requests[:2])  # warm-up
    start = time.perf_counter()
    generator.loglikelihood(requests)
    _sync(device)
    return {"bbq_items_per_s": round(len(items) / (time.perf_counter() - start), 2)}


def lora7b(device: str, shapes: Shapes, smoke: bool, tmp: Path, left: Callable[[], float]) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=shapes.hidden, num_hidden_layers=shapes.layers,
                         intermediate_size=shapes.intermediate, vocab_size=shapes.vocab,
                         num_attention_heads=shapes.heads, num_key_value_heads=shapes.heads)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    _reset_peak(device)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built straight in bf16 on the device: no fp32 copy of 7B weights anywhere
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, shapes.vocab, (shapes.batch, shapes.length), device=device, generator=generator)

    steps, start = -1, time.perf_counter()  # step -1 is the warm-up (kernel choice, optimizer state): not timed
    while steps < 5 and (steps < 1 or left() > 0):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
        if steps == 0:
            _sync(device)
            start = time.perf_counter()
    _sync(device)
    rate = steps / (time.perf_counter() - start)
    peak = _peak_gib(device)
    del model, optimizer
    _reset_peak(device)
    return {"lora7b_steps_per_s": round(rate, 3), "lora7b_peak_gib": peak}


def safelora7b(device: str, shapes: Shapes, smoke: bool, tmp: Path, left: Callable[[], float]) -> dict[str, Any]:
    import torch
    from safelora import setup  # bench/safelora.py: the same synthetic 7B-shape inputs as the CPU bench

    from safepeft.models.weights import DictWeights
    from safepeft.repair.adapter import LoraAdapter, LoraModule
    from safepeft.repair.alignment import measure_modules
    from safepeft.repair.safelora import SafeLoRA, SafeLoRASpec

    args = argparse.Namespace(d=shapes.hidden, layers=shapes.layers, rank=8)
    weights, factors, names = setup(args)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    moved: dict[int, Any] = {}  # the pool's tensors are shared between modules: move each once

    def to_device(tensor: Any, as_dtype: Any) -> Any:
        return moved.setdefault(id(tensor), tensor.to(device, as_dtype))

    base = DictWeights({k: to_device(v, dtype) for k, v in weights["base"].items()})
    aligned = DictWeights({k: to_device(v, dtype) for k, v in weights["aligned"].items()})
    tensors, modules = {}, {}
    for name in names:
        a_key, b_key = f"base_model.model.{name}.lora_A.weight", f"base_model.model.{name}.lora_B.weight"
        tensors[a_key], tensors[b_key] = (t.to(device) for t in factors[name])
        modules[name] = LoraModule(name, a_key, b_key, args.rank, 2.0)
    adapter = LoraAdapter(Path("."), {"peft_type": "LORA"}, tensors, {}, modules)
    _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    # repair/alignment.py allocates its fp32 scratch for V with torch.empty() and no device: the default device
    # puts it beside the weights (otherwise V would be computed on the CPU from GPU tensors and fail).
    with torch.device(device):
        alignments = measure_modules(adapter, base, aligned, progress=False)
        SafeLoRA().plan(alignments, adapter, SafeLoRASpec(mode="number", k=min(10, len(names))))
    _sync(device)
    return {"safelora7b_seconds": round(time.perf_counter() - start, 3), "safelora7b_peak_gib": _peak_gib(device)}


def demo(device: str, shapes: Shapes, smoke: bool, tmp: Path, left: Callable[[], float]) -> dict[str, Any]:
    command = [sys.executable, "-c", "from safepeft.cli.main import main; main()", "demo", "--quick",
               "--out", str(tmp / "demo")]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(1.0, left()))
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"demo --quick still running when --budget-s ran out ({time.perf_counter() - start:.0f} s)"
                           ) from None
    if done.returncode != 0:
        raise RuntimeError(f"demo --quick exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return {"demo_quick_seconds": round(time.perf_counter() - start, 1)}


MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "generation": generation, "bbq": bbq, "lora7b": lora7b, "safelora7b": safelora7b, "demo": demo}


def measure(device: str, smoke: bool, budget_s: float) -> dict[str, Any]:
    """Every KEY: a figure, or None with its reason in ``reasons``. One failing section leaves the others."""
    import torch

    started = time.perf_counter()

    def left() -> float:
        return budget_s - (time.perf_counter() - started)

    figures: dict[str, Any] = dict.fromkeys(KEYS)
    reasons: dict[str, str] = {}
    cuda = torch.cuda.is_available()
    shapes = SMOKE if smoke else SEVEN_B
    with tempfile.TemporaryDirectory() as tmp:
        for section, keys in SECTIONS.items():
            if device.startswith("cuda") and not cuda:
                reason = "CUDA not available"
            elif smoke and section == "demo":
                reason = "not run by --smoke (minutes, and on the smoke device rather than the GPU)"
            elif left() <= 0:
                reason = f"not measured: --budget-s {budget_s:g} spent"
            else:
                try:
                    measured = MEASURES[section](device, shapes, smoke, Path(tmp), left)
                    figures.update(measured)
                    # A key a section returned as None has no meaning on this device; one it left out ran out of time.
                    reasons.update({key: "GPU memory is only measured on CUDA" for key in keys
                                    if key in measured and measured[key] is None})
                    reason = f"not measured: --budget-s {budget_s:g} spent"
                except Exception as exc:  # a bench reports what failed and goes on with the next section
                    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
            reasons.update({key: reason for key in keys if figures[key] is None and key not in reasons})
    gpu = torch.cuda.get_device_name(0) if cuda else None
    return {**figures, "reasons": reasons, "device": device, "gpu": gpu, "smoke": smoke, "torch": torch.__version__,
            "budget_s": budget_s, "elapsed_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop measuring after this many seconds")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu only with --smoke")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, no demo: proves the code paths")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench/generate.py and bench/safelora.py
    if not args.device.startswith("cuda") and not args.smoke:
        parser.error(f"--device {args.device} measures nothing of the GPU path; use cuda, or add --smoke")
    print(json.dumps(measure(args.device, args.smoke, args.budget_s)))


if __name__ == "__main__":
    main()
