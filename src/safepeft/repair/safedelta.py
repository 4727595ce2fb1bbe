"""Safe Delta (Lu et al., ICML 2025, arXiv:2505.12038): keep the delta entries a safety-loss budget allows, then add
the compensation vector.

Per adapted linear layer, with ΔW = s·B·A (d_out, d_in) and the aligned model's inputs X on safety data:
- safety loss L(D) = ‖D·Xᵀ‖_F², Hessian H = 2·XᵀX (d_in, d_in), damped by `damp`·mean(diag H)·I; h = diag(H⁻¹).
- second-order cost of keeping entry (i, j) with the other entries of its row free: δᵢⱼ²/(2·hⱼ) (OBS).
- budget ε = `scale`·Σᵢⱼ δᵢⱼ²/(2·hⱼ), a share of the whole delta's estimated cost (see `safe_delta`). Entries are
  taken greedily by utility/cost = 2·hⱼ (utility δ², as in the paper), i.e. column by column in decreasing hⱼ,
  cheapest first, while the summed cost fits ε. Mask M.
- compensation: each kept entry's optimal (OBS) adjustment of its row, δᵢⱼ·H⁻¹[j, :]/hⱼ, summed, applied to the
  entries that were not kept: C = (1 − M) ⊙ ((M⊙ΔW / h) · H⁻¹).
- W = W_aligned + M⊙ΔW + C. An unlimited budget (`scale` None) keeps all of ΔW and C = 0.

Curvature: one forward pass of the aligned model over the safety conversations with input hooks on the adapted
layers (`input_grams`); its cost (tokens, seconds, Gram memory) is reported separately. Everything after it streams
one module at a time. Deviations (docs/repair.md): the budget is per module, not global; the summed single-entry OBS
compensation is used instead of the joint solve per row (which needs a d_in³ solve per row).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import Field

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.records.base import Spec
from safepeft.repair.adapter import REPORT_FILE
from safepeft.repair.base import RepairJob, RepairOutcome, WeightRepair
from safepeft.repair.model_io import dense_delta, lora_deltas, write_model
from safepeft.repair.report import ModuleDecision


class SafeDeltaSpec(Spec):
    """Parameters of a Safe Delta repair."""

    scale: float | None = Field(0.1, ge=0.0, allow_inf_nan=False)
    """Safety budget as a fraction of the whole delta's estimated (second-order) safety cost (None = unlimited: keep
    everything)."""
    damp: float = Field(0.01, gt=0.0, allow_inf_nan=False)
    """Hessian dampening, relative to the mean of its diagonal (keeps H invertible with few tokens)."""
    compensate: bool = True
    """Add the OBS compensation vector to the entries that were not kept."""
    max_samples: int = Field(64, ge=1)
    """Safety conversations used for the curvature."""
    max_length: int = Field(256, ge=8)
    """Tokens per safety conversation."""


@dataclass
class DeltaSelection:
    """The repaired delta of one module and its figures."""

    delta: torch.Tensor
    """M⊙ΔW + C, fp32 (d_out, d_in)."""
    kept_fraction: float
    loss_full: float
    """L(ΔW): safety loss of the whole delta."""
    loss_kept: float
    """L(M⊙ΔW)."""
    loss_final: float
    """L(M⊙ΔW + C)."""


def safety_loss(delta: torch.Tensor, gram: torch.Tensor) -> float:
    """‖D·Xᵀ‖_F² = tr(D·XᵀX·Dᵀ) = Σ rows of (D·G)⊙D, in row blocks with float64 sums (no d_out×d_in temporaries)."""
    total = 0.0
    for start in range(0, delta.shape[0], 256):
        block = delta[start:start + 256].float()
        total += float(((block @ gram) * block).sum(dtype=torch.float64))
    return total


def safe_delta(delta: torch.Tensor, gram: torch.Tensor, scale: float | None, damp: float = 0.01,
               compensate: bool = True) -> DeltaSelection:
    """Select and compensate one module's delta. delta: (d_out, d_in); gram: XᵀX (d_in, d_in)."""
    delta, gram = delta.float(), gram.float()
    loss_full = safety_loss(delta, gram)
    if scale is None:
        return DeltaSelection(delta, 1.0, loss_full, loss_full, loss_full)
    hessian = 2.0 * gram  # (d_in, d_in)
    hessian.diagonal().add_(damp * float(hessian.diagonal().mean().clamp_min(1e-12)))
    # fp32 Cholesky, as SparseGPT/OBS implementations do: the relative damping keeps H well conditioned.
    h_inv = torch.cholesky_inverse(torch.linalg.cholesky(hessian))  # (d_in, d_in)
    del hessian
    h = h_inv.diagonal().clone()  # (d_in,)
    cost = delta.square().div_(2.0 * h)  # (d_out, d_in)
    # The budget is a share of the whole delta's estimated cost, in the costs' own units. Against the exact loss
    # L(ΔW) instead, the OBS costs (each assuming the rest of its row is free) summed to under 5% of L on the
    # embedded model's correlated activations, so every budget from 0.05 to 0.3 kept the whole delta.
    mask = _greedy_mask(cost, h, scale * float(cost.sum(dtype=torch.float64)))
    del cost
    mask &= delta != 0  # a zero delta entry is free, not "kept"
    kept = delta * mask  # (d_out, d_in); one buffer from here on, the rest in place
    if not compensate or bool(mask.all()):
        loss = safety_loss(kept, gram)
        return DeltaSelection(kept, float(mask.float().mean()), loss_full, loss, loss)
    loss_kept = safety_loss(kept, gram)
    final = (kept / h) @ h_inv  # summed single-entry OBS adjustments (d_out, d_in)
    final.masked_fill_(mask, 0.0).add_(kept)  # free entries take the adjustment, kept entries stay at their delta
    return DeltaSelection(final, float(mask.float().mean()), loss_full, loss_kept, safety_loss(final, gram))


def _greedy_mask(cost: torch.Tensor, h: torch.Tensor, budget: float) -> torch.Tensor:
    """Columns in decreasing h (utility/cost = 2h), cheapest entries first inside the column where the budget ends."""
    order = torch.argsort(h, descending=True)
    column_cost = cost.sum(dim=0, dtype=torch.float64)[order]
    full = int((torch.cumsum(column_cost, 0) <= budget).sum())
    mask = torch.zeros_like(cost, dtype=torch.bool)
    mask[:, order[:full]] = True
    if full < len(order):
        left = budget - float(column_cost[:full].sum())
        column = order[full]
        ranked = torch.argsort(cost[:, column])
        take = int((torch.cumsum(cost[ranked, column].double(), 0) <= left).sum())
        mask[ranked[:take], column] = True
    return mask


def input_grams(model: Any, tokenizer: Any, conversations: list[Any], module_names: list[str],
                max_length: int) -> tuple[dict[str, torch.Tensor], int]:
    """XᵀX of every named Linear's input over the conversations (one at a time: no padding). -> (grams, tokens)."""
    modules = dict(model.named_modules())
    missing = [n for n in module_names if n not in modules]
    if missing:
        raise IncompatibleArtifactError(f"The aligned model has no module {missing[0]} to measure.",
                                        "The adapter must have been trained on the aligned model.")
    grams: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(_module: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()  # (tokens, d_in)
            grams[name] = grams.get(name, 0) + x.T @ x
        return record

    handles = [modules[n].register_forward_pre_hook(hook(n)) for n in module_names]
    tokens = 0
    try:
        with torch.no_grad():
            for conversation in conversations:
                text = conversation if isinstance(conversation, str) else tokenizer.apply_chat_template(
                    conversation, tokenize=False)
                ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)["input_ids"]
                model(input_ids=ids.to(next(model.parameters()).device))
                tokens += int(ids.shape[1])
    finally:
        for handle in handles:
            handle.remove()
    return {n: g.cpu() for n, g in grams.items()}, tokens


class SafeDelta(WeightRepair):
    """Keep the fine-tuning delta entries that fit a safety-loss budget, plus the OBS compensation vector."""

    name: ClassVar[str] = "safedelta"
    paper: ClassVar[str] = "Lu et al., Safe Delta: Consistently Preserving Safety when Fine-Tuning LLMs on Diverse " \
                           "Datasets, ICML 2025 (arXiv:2505.12038)"
    spec_class: ClassVar[type[Spec]] = SafeDeltaSpec
    version: ClassVar[int] = 2  # 2: the budget is a share of the estimated cost, not of the exact loss
    inputs: ClassVar[tuple[str, ...]] = ()
    optional_inputs: ClassVar[tuple[str, ...]] = ("safety_conversations", "grams")
    """safety_conversations (chats or texts, run through the aligned model) or grams (name -> XᵀX, precomputed)."""

    def run(self, job: RepairJob, spec: Any, record: Any) -> RepairOutcome:
        updated = lora_deltas(job.adapter, job.aligned)
        extras = job.extras or {}
        grams, curvature = extras.get("grams"), {"source": "given"}
        if grams is None:
            grams, curvature = self._curvature(job, spec, [m.name for m in updated.values()],
                                               extras.get("safety_conversations"))
        missing = [m.name for m in updated.values() if m.name not in grams]
        if missing:
            raise ConfigError(f"No curvature for {missing[0]}.", "Pass a Gram matrix for every adapted module.")
        curvature["gram_bytes"] = sum(g.numel() * g.element_size() for g in grams.values())
        modules: dict[str, ModuleDecision] = {}

        def edit(name: str, w_aligned: torch.Tensor) -> torch.Tensor | None:
            module = updated.get(name)
            if module is None:
                return None
            delta = dense_delta(job.adapter, module, w_aligned.device)
            oriented = delta.T if module.fan_in_fan_out else delta  # (d_out, d_in) like X's features
            gram = grams[module.name].to(w_aligned.device)  # one module's Gram on the device at a time
            result = safe_delta(oriented, gram, spec.scale, spec.damp, spec.compensate)
            modules[module.name] = ModuleDecision(
                name=module.name, shape=(int(oriented.shape[0]), int(oriented.shape[1])), rank=module.rank,
                score=result.kept_fraction, action="edited", details={
                    "kept_fraction": result.kept_fraction, "safety_loss_full": result.loss_full,
                    "safety_loss_kept": result.loss_kept, "safety_loss_final": result.loss_final})
            new = result.delta.T if module.fan_in_fan_out else result.delta
            return w_aligned.float() + new

        def render(stats: dict[str, Any]) -> str:
            entries = [modules[n] for n in sorted(modules)]
            full = sum(m.details["safety_loss_full"] for m in entries)
            summary = {"output": "model", "modules": len(entries), "scale": spec.scale,
                       "kept_fraction_mean": sum(m.details["kept_fraction"] for m in entries) / len(entries),
                       "safety_loss_full": full,
                       "safety_loss_final": sum(m.details["safety_loss_final"] for m in entries),
                       "curvature": curvature, "bytes_written": stats["bytes"]}
            outcome.summary.update(summary)
            outcome.modules[:] = entries
            return record(outcome)

        outcome = RepairOutcome("model", [], {})
        write_model(job.out, job.aligned, edit, f"Safe Delta with scale={spec.scale}", REPORT_FILE, render,
                    job.progress)
        return outcome

    @staticmethod
    def _curvature(job: RepairJob, spec: Any, names: list[str],
                   conversations: list[Any] | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        from safepeft.models.loader import load_model

        if not conversations:
            raise ConfigError("Safe Delta needs safety conversations (or precomputed grams) for its curvature.",
                              "`safepeft repair safedelta` uses builtin:safety; from Python pass "
                              "inputs={'safety_conversations': [...]}.")
        if job.aligned_spec is None:
            raise ConfigError("Safe Delta runs the aligned model on safety data, so --aligned must be a model spec.",
                              "Pass the aligned model as a path or hub id, or precomputed grams.")
        started = time.perf_counter()
        loaded = load_model(job.aligned_spec, dtype="float32", device=job.device, require_chat_template=False)
        grams, tokens = input_grams(loaded.model, loaded.tokenizer, list(conversations)[: spec.max_samples], names,
                                    spec.max_length)
        return grams, {"source": "aligned model forward pass", "conversations": min(len(conversations),
                                                                                    spec.max_samples),
                       "tokens": tokens, "seconds": round(time.perf_counter() - started, 3)}
