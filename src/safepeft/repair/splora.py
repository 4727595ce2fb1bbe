"""SPLoRA (Ao et al., TACL 2025): prune the LoRA modules whose update moved away from the alignment subspace.

Per module, with C as in SafeLoRA and ΔW = s·B·A: the distance d = ‖C·ΔW − ΔW‖_F (computed from r×r Grams), scored
with E-DIEM against a real reference set (`ediem.py`). A pruned module is removed from the saved adapter (equivalent
to lora_B = 0) and from `target_modules`, so PEFT does not even wrap that layer: its LoRA FLOPs disappear.

Direction (methods.md §2 asks to confirm it): the paper prunes "LoRA layers that weaken safety alignment". A large
E-DIEM means the update is unusually far from its image under C, i.e. it moved away from the alignment subspace,
so by default the HIGHEST scores are pruned (`direction="far"`: threshold prunes score >= tau, number prunes the k
highest). The official code compares its score with `<= tau`, which prunes the modules CLOSEST to the alignment
subspace; `direction="near"` reproduces that choice for comparison. `number` mode prunes exactly the k worst modules
(the official code's k-th-largest threshold prunes all but k-1). `k` is a count, or a share of the adapter's modules
(default a quarter), so the default suits adapters of any size; pruning more than half of them is warned about.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from safepeft.errors import ConfigError
from safepeft.records.base import Spec
from safepeft.repair.adapter import LoraAdapter
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.base import RepairMethod, RepairPlan, finite, module_record
from safepeft.repair.ediem import Statistic, ediem_scores
from safepeft.repair.run import RepairWarning
from safepeft.repair.selection import Mode, check_count_or_share, module_count, select_modules


class SPLoRASpec(Spec):
    """Parameters of an SPLoRA repair."""

    mode: Mode = "number"
    """threshold: prune every module whose E-DIEM is on the bad side of tau; number: prune the k worst modules."""
    tau: float = 1.0
    """E-DIEM threshold: with direction=far, prune modules more than tau reference spreads (IQRs) above the median."""
    k: int | float = 0.25
    """Number mode: modules to prune, a count (an integer >= 1) or a share of the adapter's modules in (0, 1)."""
    reference: Literal["shape", "all"] = "shape"
    """E-DIEM reference set: the distances of all modules of the same shape (default), or of all modules."""
    statistic: Statistic = "median-iqr"
    """Centre/spread of the reference set: median and IQR (robust, default) or mean and standard deviation."""
    direction: Literal["far", "near"] = "far"
    """far: prune modules farthest from the alignment subspace (paper's intent); near: the official code's <= test."""
    strict: bool = False
    """Refuse, instead of warning, an adapter whose safepeft_train.json is missing or names another model."""

    @field_validator("k")
    @classmethod
    def _count_or_share(cls, k: int | float) -> int | float:
        return check_count_or_share(k)  # pruning every module would remove the fine-tune itself


class SPLoRA(RepairMethod):
    """Prune the LoRA modules whose update moved away from the alignment subspace (E-DIEM)."""

    name: ClassVar[str] = "splora"
    paper: ClassVar[str] = "Ao et al., Safe Pruning LoRA, TACL 13:1474-1487, 2025 (arXiv:2506.18931)"
    spec_class: ClassVar[type[Spec]] = SPLoRASpec
    checks_provenance: ClassVar[bool] = True
    """E-DIEM is measured against the aligned model, so the adapter must have been trained on it."""

    def plan(self, alignments: list[ModuleAlignment], adapter: LoraAdapter, spec: Any) -> RepairPlan:
        scored = [a for a in alignments if a.skip_reason is None]
        distances = {a.name: a.module.scaling * a.geometry.residual_norm for a in scored}
        groups = {a.name: ("x".join(map(str, a.shape)) if spec.reference == "shape" else "all") for a in scored}
        scores, stats = ediem_scores(distances, groups, spec.statistic) if scored else ({}, {})
        worst = "high" if spec.direction == "far" else "low"
        count = module_count(spec.k, len(alignments))
        n = len(alignments)
        if spec.mode == "number" and count > n:
            raise ConfigError(f"--k {spec.k} is more than the {n} modules of the adapter {adapter.path}; nothing was "
                              "written.", f"Pass --k {n - 1} or less, or a share such as --k 0.25.")
        pruned = select_modules(scores, spec.mode, spec.tau, count, worst=worst)
        if len(pruned) == len(alignments):
            raise ConfigError(
                f"SPLoRA would prune all {len(alignments)} modules: the repaired adapter would be empty "
                "(the aligned model's behaviour is the base model itself).",
                "Lower --k or change --tau.",
            )
        if len(pruned) > len(alignments) / 2:
            warnings.warn(f"SPLoRA will prune {len(pruned)} of the adapter's {len(alignments)} modules (more than "
                          "half), removing most of the fine-tuning. Lower --k (a share such as --k 0.25 scales with "
                          "the adapter) or change --tau if that is not intended.", RepairWarning, stacklevel=2)
        drop = {key for a in alignments if a.name in pruned for key in (a.module.a_key, a.module.b_key)}
        tensors = {key: value for key, value in adapter.tensors.items() if key not in drop}
        config = dict(adapter.config)
        config["target_modules"] = sorted(a.name for a in alignments if a.name not in pruned)
        records = [
            module_record(a, finite(scores.get(a.name)), "pruned" if a.name in pruned else "kept", {
                "distance": finite(distances.get(a.name)),
                "update_norm": a.module.scaling * a.geometry.update_norm,
                "reference_set": groups.get(a.name),
            }) for a in alignments
        ]
        summary = _summary(alignments, pruned, stats) | ({"k_modules": count} if spec.mode == "number" else {})
        return RepairPlan(tensors, config, records, summary)


def lora_cost(alignment: ModuleAlignment) -> tuple[int, int]:
    """(parameters, matmul FLOPs per token) of one LoRA module: r·(d_in + d_out) and 2·r·(d_in + d_out)."""
    d_out, d_in = alignment.shape
    params = alignment.module.rank * (d_in + d_out)
    return params, 2 * params


def _summary(alignments: list[ModuleAlignment], pruned: set[str], stats: dict) -> dict[str, Any]:
    total_params = sum(lora_cost(a)[0] for a in alignments)
    removed_params = sum(lora_cost(a)[0] for a in alignments if a.name in pruned)
    return {
        "modules": len(alignments),
        "pruned": len(pruned),
        "skipped": sum(1 for a in alignments if a.skip_reason),
        "adapter_params": total_params,
        "params_removed": removed_params,
        "params_removed_fraction": removed_params / total_params if total_params else 0.0,
        "flops_per_token_removed": 2 * removed_params,
        "flops_per_token_note": "LoRA matmul FLOPs per token, 2·r·(d_in + d_out) per pruned module",
        "reference_sets": {
            group: {"centre": s.centre, "spread": s.spread, "size": s.size} for group, s in stats.items()
        },
    }
