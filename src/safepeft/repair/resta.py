"""RESTA (Bhardwaj et al., ACL 2024, arXiv:2402.11746): re-add the safety vector to the fine-tuned weights.

θ = θ_ft + β·(θ_aligned − θ_unaligned), with θ_ft = θ_aligned + ΔW and ΔW = s·B·A from the LoRA adapter. Optionally
the fine-tuning delta first goes through DARE (Yu et al. 2024): each entry is dropped with probability p and the
survivors are rescaled by 1/(1−p). Here the unaligned model is `--base`: the paper builds θ_unaligned by fine-tuning
the aligned model on harmful data, safepeft uses the base the aligned model came from (the SafeLoRA pair); both are
"the same weights without the safety alignment".

Two outputs (`output`):
- `model`: a full model directory, exact: every floating tensor gets β·V, adapted ones also get ΔW. Streamed one
  tensor at a time (`model_io.write_model`).
- `lora`: a PEFT LoRA adapter for the aligned model holding ΔW + β·P_k(V), with P_k the rank-k truncated SVD of V
  per weight matrix (`lowrank.py`). It is exact for ΔW and approximate for V: the summary reports the relative error
  ‖V − P_k(V)‖_F/‖V‖_F per module and the share of ‖V‖² the adapter cannot hold (norms, embeddings, uncovered
  layers). DARE needs the dense delta, so it is refused with this output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from statistics import median
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from safepeft.errors import ConfigError
from safepeft.records.base import Spec
from safepeft.repair.adapter import PEFT_PREFIX, REPORT_FILE, write_adapter
from safepeft.repair.base import RepairJob, RepairOutcome, WeightRepair
from safepeft.repair.lineage import check_lineage
from safepeft.repair.lowrank import SvdMethod, truncated_svd
from safepeft.repair.model_io import (
    add_lora_delta_,
    check_finite,
    dense_delta,
    frobenius_sq,
    lora_deltas,
    pair_weights,
    relative_changes,
    write_model,
)
from safepeft.repair.report import ModuleDecision


class RESTASpec(Spec):
    """Parameters of a RESTA repair."""

    beta: float = Field(0.5, allow_inf_nan=False)
    """β, the coefficient of the safety vector θ_aligned − θ_base added to the fine-tuned weights (0 = no change)."""
    dare: float = Field(0.0, ge=0.0, lt=1.0)
    """DARE drop rate p for the fine-tuning delta before the safety vector is added (0 = no DARE; model output)."""
    seed: int = 0
    """Seed of DARE's drop masks."""
    output: Literal["model", "lora"] = "model"
    """model: exact full weights; lora: a LoRA adapter with the safety vector kept at rank k (approximate)."""
    k: int = Field(16, ge=1)
    """lora output: rank of the truncated-SVD safety vector per weight matrix."""
    lora_targets: Literal["adapter", "all-linear"] = "all-linear"
    """lora output: the adapter's modules only, or every linear weight (2-D, not embeddings or lm_head)."""
    svd: SvdMethod = "auto"
    """lora output: exact SVD, randomized (fast at 4096²), or auto (exact up to 1024)."""


def resta_weight(w_aligned: torch.Tensor, w_base: torch.Tensor, beta: float,
                 delta: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """θ_aligned + ΔW + β·(θ_aligned − θ_base) = (1+β)·θ_aligned − β·θ_base + ΔW in a fresh fp32 tensor.

    `delta(out)` adds ΔW to `out` in place (LoRA factors via addmm, or a DARE-dropped dense delta). Computed in
    place on one buffer, so the peak is one weight matrix, not the four a literal θ_ft + β·V would allocate.
    """
    # Coefficients as fp32 tensors: a β beyond fp32's range becomes inf (and is reported as non-finite weights)
    # instead of a conversion error.
    device = w_aligned.device
    out = torch.mul(w_aligned.float(), torch.tensor(1.0 + beta, dtype=torch.float32, device=device))
    out.addcmul_(w_base.float(), torch.tensor(-beta, dtype=torch.float32, device=device))
    return delta(out) if delta is not None else out


def dare(delta: torch.Tensor, drop: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each entry with probability `drop`, rescale survivors by 1/(1−drop) (E[result] = delta)."""
    if drop == 0.0:
        return delta
    # The mask is drawn on the CPU generator whatever the device, so a seed gives the same mask everywhere.
    keep = (torch.rand(delta.shape, generator=generator) >= drop).to(delta.device)
    return delta * keep / (1.0 - drop)


def lowrank_lora(b: torch.Tensor | None, a: torch.Tensor | None, scaling: float, left: torch.Tensor,
                 right: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors with scaling 1 for s·B·A + β·left·right: B' = [s·B, β·left] (d_out, r+k), A' = [A; right]."""
    if b is None:
        return beta * left, right
    return torch.cat([scaling * b.float(), beta * left], dim=1), torch.cat([a.float(), right], dim=0)


def is_linear_weight(name: str, shape: tuple[int, ...]) -> bool:
    """A 2-D weight PEFT's all-linear would adapt (embeddings and the output head excluded)."""
    return len(shape) == 2 and name.endswith(".weight") and "embed" not in name and "lm_head" not in name


class RESTA(WeightRepair):
    """Re-add the safety vector β·(θ_aligned − θ_base) to the fine-tuned weights, optionally after DARE."""

    name: ClassVar[str] = "resta"
    paper: ClassVar[str] = "Bhardwaj et al., Language Models are Homer Simpson! (RESTA), ACL 2024 (arXiv:2402.11746)"
    spec_class: ClassVar[type[Spec]] = RESTASpec

    def run(self, job: RepairJob, spec: Any, record: Any) -> RepairOutcome:
        if spec.output == "lora" and spec.dare:
            raise ConfigError(f"RESTA's DARE (dare={spec.dare}) needs the dense fine-tuning delta; the lora output "
                              "keeps it as LoRA factors.", "Use --output model with --dare, or --dare 0.")
        pairs = pair_weights(job.base, job.aligned, job.base_name, job.aligned_name)
        changes = relative_changes(job.base, job.aligned, pairs)
        median_change = check_lineage(changes, job.base_name, job.aligned_name)
        updated = lora_deltas(job.adapter, job.aligned)
        if spec.output == "model":
            return self._model(job, spec, record, pairs, updated, changes, median_change)
        return self._lora(job, spec, record, pairs, updated, changes, median_change)

    def _model(self, job, spec, record, pairs, updated, changes, median_change) -> RepairOutcome:
        generator = torch.Generator().manual_seed(spec.seed)
        kept: dict[str, float] = {}

        def add_delta(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
            if name not in updated:
                return None
            module = updated[name]
            if not spec.dare:
                kept[name] = 1.0
                return lambda out: add_lora_delta_(out, job.adapter, module)

            def add_dropped(out: torch.Tensor) -> torch.Tensor:
                dropped = dare(dense_delta(job.adapter, module, out.device), spec.dare, generator)
                kept[name] = float((dropped != 0).float().mean())
                return out.add_(dropped)
            return add_dropped

        def edit(name: str, w_aligned: torch.Tensor) -> torch.Tensor | None:
            if not w_aligned.is_floating_point():
                return None
            return resta_weight(w_aligned, job.base.get(pairs[name]), spec.beta, add_delta(name))

        modules = [_record(m.name, m, changes, key, tuple(job.aligned.shape(key)), {"dare_kept_fraction": None})
                   for key, m in sorted(updated.items(), key=lambda item: item[1].name)]
        summary = {"output": "model", "beta": spec.beta, "dare": spec.dare, "tensors_with_safety_vector": None,
                   "adapter_modules_merged": len(updated), "median_relative_safety_vector": median_change}

        def render(stats: dict[str, Any]) -> str:
            for module_record, key in zip(modules, sorted(updated, key=lambda k: updated[k].name), strict=True):
                module_record.details["dare_kept_fraction"] = kept.get(key)
            summary["tensors_with_safety_vector"] = stats["edited"]
            summary["bytes_written"] = stats["bytes"]
            return record(RepairOutcome("model", modules, summary))

        write_model(job.out, job.aligned, edit, f"RESTA with beta={spec.beta}", REPORT_FILE, render, job.progress)
        return RepairOutcome("model", modules, summary)

    def _lora(self, job, spec, record, pairs, updated, changes, median_change) -> RepairOutcome:
        adapter = job.adapter
        by_module = {m.name: key for key, m in updated.items()}
        targets = sorted({key for key in updated} | ({n for n in pairs if is_linear_weight(
            n, tuple(job.aligned.shape(n)))} if spec.lora_targets == "all-linear" else set()))
        tensors, ranks, errors, covered_sq, modules = {}, {}, {}, 0.0, []
        for key in targets:
            name = key.removesuffix(".weight")
            module = updated.get(key)
            v = job.aligned.get(key).float() - job.base.get(pairs[key]).float()
            if module is not None and module.fan_in_fan_out:
                v = v.T  # (d_out, d_in) like B·A
            v_sq = frobenius_sq(v)
            if v_sq == 0.0 and module is None:
                continue  # alignment did not touch this layer: nothing to store
            svd = truncated_svd(v, spec.k, spec.svd, name=f"the safety vector of {key}") if v_sq > 0 else None
            left = svd.left if svd else torch.zeros(v.shape[0], 0, device=v.device)
            right = svd.right if svd else torch.zeros(0, v.shape[1], device=v.device)
            b, a = (adapter.b(module.name).to(v.device), adapter.a(module.name).to(v.device)) if module else (None,
                                                                                                             None)
            new_b, new_a = lowrank_lora(b, a, module.scaling if module else 1.0, left, right, spec.beta)
            dtype = adapter.b(module.name).dtype if module else next(iter(adapter.tensors.values())).dtype
            for part, value in (("B", new_b), ("A", new_a)):
                check_finite(f"{name}.lora_{part}", value.to(dtype), f"RESTA with beta={spec.beta}")
                # back to the CPU as each module is done: the device holds one module at a time
                tensors[f"{PEFT_PREFIX}{name}.lora_{part}.weight"] = value.to(dtype).contiguous().cpu()
            ranks[name] = int(new_a.shape[0])
            errors[name] = svd.relative_error if svd else 0.0
            covered_sq += float((svd.singular_values.double() ** 2).sum()) if svd else 0.0
            modules.append(_record(name, module, {key: (v_sq**0.5, None)}, key, tuple(v.shape),
                                   {"lowrank_relative_error": errors[name]}, rank=ranks[name]))
        total_sq = _vector_sq(job, pairs)
        config = _lora_config(adapter.config, ranks)
        summary = {
            "output": "lora", "beta": spec.beta, "k": spec.k, "lora_targets": spec.lora_targets,
            "modules": len(ranks), "adapter_modules": len(by_module),
            "lowrank_relative_error_median": median(errors.values()) if errors else None,
            "lowrank_relative_error_max": max(errors.values()) if errors else None,
            "safety_vector_fraction_held": covered_sq / total_sq if total_sq else None,
            "safety_vector_note": "fraction of Σ‖V‖_F² (all tensors) held by the rank-k factors; the rest is lost",
            "median_relative_safety_vector": median_change,
        }
        outcome = RepairOutcome("adapter", modules, summary)
        write_adapter(job.out, adapter, tensors, config, record(outcome))
        return outcome


def _vector_sq(job: RepairJob, pairs: dict[str, str]) -> float:
    total = 0.0
    for name, key in pairs.items():
        w = job.aligned.get(name)
        if w.is_floating_point():
            total += frobenius_sq(_rows(w), _rows(job.base.get(key)))
    return total


def _rows(tensor: torch.Tensor) -> torch.Tensor:
    """Any tensor as a 2-D view (rows, rest) for the chunked norms."""
    return tensor.reshape(tensor.shape[0], -1) if tensor.dim() else tensor.reshape(1, 1)


def _lora_config(config: dict[str, Any], ranks: dict[str, int]) -> dict[str, Any]:
    """Every module listed by name with its own rank and alpha = rank (scaling 1: the factors carry all scales)."""
    new = dict(config)
    new.update(target_modules=sorted(ranks), use_rslora=False, layers_to_transform=None, layers_pattern=None,
               rank_pattern={re.escape(n): r for n, r in ranks.items()},
               alpha_pattern={re.escape(n): r for n, r in ranks.items()})
    common = max(set(ranks.values()), key=list(ranks.values()).count)
    new.update(r=common, lora_alpha=common)
    return new


def _record(name: str, module: Any, changes: dict[str, tuple[float, float]], key: str, shape: tuple[int, ...],
            details: dict[str, Any], rank: int | None = None) -> ModuleDecision:
    v_norm, w_norm = changes.get(key, (None, None))
    shape = tuple(reversed(shape)) if module is not None and module.fan_in_fan_out and rank is None else shape
    return ModuleDecision(name=name, shape=(int(shape[0]), int(shape[1])), rank=rank or module.rank, score=None,
                          action="edited", details={"v_norm": v_norm, "base_norm": w_norm, **details})
