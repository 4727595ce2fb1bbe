"""SafeLoRA (Hsu et al., NeurIPS 2024): project the least-aligned LoRA modules onto the alignment subspace.

Per module: C = V·Vᵀ/‖V‖_F with V = W_aligned − W_base, score s = cos(vec(C·B·A), vec(B·A)), and for the selected
modules B ← C·B (A and the rank unchanged, so the result is a drop-in adapter). Low s means the update points away
from what alignment changed, so `threshold` projects s ≤ τ and `number` projects the k lowest.

Differences from the official code (methods.md §1), all in the paper's intent:
- modules are matched to weights by name (not by `zip` over parameter order), so per-module ranks, `rank_pattern`
  and biased projections work;
- C is never formed (see `projection.py`), and weights are streamed one module at a time;
- `number` mode scores once from pristine weights and projects once (no double pass), exactly k modules;
- fp32 products, float64 r×r traces; the projected B is cast back to the adapter's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator

from safepeft.records.base import Spec
from safepeft.repair.adapter import LoraAdapter
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.base import RepairMethod, RepairPlan, finite, module_record
from safepeft.repair.selection import Mode, check_count_or_share, module_count, select_modules


class SafeLoRASpec(Spec):
    """Parameters of a SafeLoRA repair (defaults are the official config's)."""

    mode: Mode = "number"
    """threshold: project every module with similarity <= tau; number: project the k least similar modules."""
    tau: float = Field(0.5, ge=-1.0, le=1.0)
    """Cosine-similarity threshold for threshold mode."""
    k: int | float = 10
    """Number mode: modules to project, a count (an integer >= 1; a module is one adapted layer: q and v of a block
    are two) or a share of the adapter's modules in (0, 1] (1.0 projects every module)."""
    strict: bool = False
    """Refuse, instead of warning, an adapter whose safepeft_train.json is missing or names another model."""

    @field_validator("k")
    @classmethod
    def _count_or_share(cls, k: int | float) -> int | float:
        return check_count_or_share(k, allow_all=True)


class SafeLoRA(RepairMethod):
    """Project the least-aligned LoRA modules onto the alignment subspace (B <- C·B)."""

    name: ClassVar[str] = "safelora"
    paper: ClassVar[str] = "Hsu et al., Safe LoRA, NeurIPS 2024 (arXiv:2405.16833)"
    spec_class: ClassVar[type[Spec]] = SafeLoRASpec
    checks_provenance: ClassVar[bool] = True
    """C comes from the aligned model, so the adapter must have been trained on it (`repair.run.check_provenance`)."""

    def plan(self, alignments: list[ModuleAlignment], adapter: LoraAdapter, spec: Any) -> RepairPlan:
        scores = {a.name: (a.geometry.cosine if a.skip_reason is None else None) for a in alignments}
        k = module_count(spec.k, sum(score is not None for score in scores.values()))
        selected = select_modules(scores, spec.mode, spec.tau, k, worst="low")
        tensors = dict(adapter.tensors)
        records, closeness = [], []
        for alignment in alignments:
            b_orig = adapter.b(alignment.name)
            b_final = alignment.geometry.cb.to(b_orig.dtype) if alignment.name in selected else b_orig
            tensors[alignment.module.b_key] = b_final
            gap = None
            if alignment.skip_reason is None:
                # The official diagnostic: 1/(1+‖B_final − C·B_orig‖_F), 1 for every projected module.
                gap = float(torch.linalg.matrix_norm(b_final.float() - alignment.geometry.cb))
                closeness.append(1.0 / (1.0 + gap))
            action = "projected" if alignment.name in selected else "kept"
            records.append(module_record(alignment, scores[alignment.name], action, {
                "update_norm": alignment.module.scaling * alignment.geometry.update_norm,
                "b_minus_cb_norm": gap,
            }))
        chosen = [scores[name] for name in selected]
        summary = {
            "modules": len(alignments),
            "projected": len(selected),
            "skipped": sum(1 for a in alignments if a.skip_reason),
            "largest_projected_similarity": finite(max(chosen)) if chosen else None,
            "pdst": sum(closeness) / len(closeness) if closeness else None,
            "pdst_note": "mean over scored modules of 1/(1+||B_final - C·B_orig||_F); 1 = every module projected",
        }
        return RepairPlan(tensors, dict(adapter.config), records, summary)
