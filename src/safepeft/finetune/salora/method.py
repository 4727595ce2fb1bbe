"""``--method salora``: SaLoRA (Li et al., "SaLoRA: Safety-Alignment Preserved Low-Rank Adaptation", ICLR 2025,
https://arxiv.org/abs/2501.01765; official code https://github.com/homles11/SaLoRA).

``prepare`` calibrates on safety and task samples, fixes C = I − U_s·U_sᵀ and the task-specific init per target
module, and wraps the targets (``layer.py``); ``save`` writes the portable rank-2r PEFT adapter (what
``safepeft generate --adapter`` and vLLM load) next to the exact native files (``export.py``).

Deviations from the official code (docs/salora.md, methods.md §3): C is applied as x − U_s(U_sᵀx) and saved as U_s
(the official code materialises d_out² per module and forgets C on export); modules are keyed by name (its
``--more_module`` indexing assigns the wrong C); both calibration passes use the unmodified model; exact SVD/eigen
decompositions instead of ``svd_lowrank(q=r)``; any HF causal LM with nn.Linear projections, not Llama-2 only; the
adapter ships as a standard PEFT LoRA instead of needing patched base weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from safepeft.finetune.base import FinetuneMethod, MethodSpec, PrepareContext
from safepeft.finetune.salora import data
from safepeft.finetune.salora.targets import resolve_targets
from safepeft.finetune.targets import default_targets

_FROZEN = ("lora_A0", "lora_B0", "safety_basis")  # fixed by calibration; checkpointed so a resume is exact


class SaLoraSpec(MethodSpec):
    rank: int = Field(16, ge=1)
    """LoRA rank r of the trainable A (r×d_in) and B (d_out×r); the portable adapter has rank 2r."""
    alpha: float = Field(16.0, gt=0)
    """Scaling numerator: the update is multiplied by alpha / rank (paper code: 16/16 = 1)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the input of the trainable branch (paper code: 0)."""
    target_modules: list[str] | None = None
    """nn.Linear module names to adapt (suffix match, as PEFT); default from the LoRA table (llama: q_proj, v_proj)."""
    safety_rank: int = Field(32, ge=1)
    """r_s: dimension of the output subspace of safety features kept exactly as the aligned model's."""
    task_rank: int = Field(32, ge=1)
    """r_t: dimension of the task-feature subspace that B's initialisation is projected onto."""
    safety_samples: int = Field(128, ge=1)
    """Number of harmful prompts (with refusals) in the safety calibration."""
    task_samples: int = Field(128, ge=1)
    """Number of training rows in the task calibration."""
    safety_data: str | None = None
    """Safety calibration rows (file, builtin:NAME or hub id, training format); default builtin:safety."""
    safety_responses: Literal["model", "data"] = "model"
    """`model`: the model's own greedy replies to the harmful prompts (paper); `data`: the replies in the file."""
    reply_tokens: int = Field(64, ge=1)
    """Maximum new tokens of each generated reply when safety_responses is `model`."""
    calibration_batch_size: int = Field(32, ge=1)
    """Batch size of reply generation and the calibration passes (no gradients, so it can exceed the training batch;
    on a CPU, batch 32 generates ~10x faster than batch 4)."""


class SaLoraMethod(FinetuneMethod):
    """SaLoRA: LoRA whose update is projected off the model's safety-feature subspace, with task-aware init."""

    name = "salora"
    description = "SaLoRA: safety-preserving LoRA (fixed safety projection + task-specific init); ICLR 2025."
    spec_class = SaLoraSpec
    writes = "LORA"  # the portable rank-2r PEFT LoRA (export.save_portable), so LoRA repairs apply
    default_learning_rate = 1e-4  # the paper code's lr

    def prepare(self, ctx: PrepareContext, spec: MethodSpec) -> Any:
        # torch-heavy modules load with the method, not with the registry: the CLI reads the spec at start-up
        from safepeft.finetune.salora.build import build_inits
        from safepeft.finetune.salora.layer import attach
        from safepeft.progress import bar

        assert isinstance(spec, SaLoraSpec)
        model, tokenizer = ctx.loaded.model, ctx.loaded.tokenizer
        names = resolve_targets(model, spec.target_modules or default_targets("lora", model.config))
        rows = data.sample(data.safety_rows(spec.safety_data), spec.safety_samples, ctx.seed)
        if spec.safety_responses == "model":
            rows = data.with_model_replies(ctx.loaded, rows, spec.calibration_batch_size, spec.reply_tokens)
        batch = spec.calibration_batch_size
        safety = data.batched(data.tokenize_rows(tokenizer, rows), batch, tokenizer.pad_token_id)
        task_examples = data.sample(list(ctx.examples), spec.task_samples, ctx.seed)
        task = data.batched(task_examples, batch, tokenizer.pad_token_id)
        with bar("SaLoRA calibration", len(safety) + len(task)) as advance:
            inits, tokens = build_inits(model, names, safety, task, rank=spec.rank, safety_rank=spec.safety_rank,
                                        task_rank=spec.task_rank, progress=advance)
        ctx.extras["salora"] = {
            "target_modules": len(names), "safety_rows": len(rows), "task_rows": len(task_examples), **tokens,
            "safety_refusal_rate": _refusal_rate(rows) if spec.safety_responses == "model" else None,
        }
        return attach(model, inits, spec.alpha / spec.rank, spec.dropout)

    def save(self, model: Any, out_dir: Path, ctx: PrepareContext, spec: MethodSpec) -> None:
        from safepeft.finetune.salora.export import save_native, save_portable

        save_native(model, out_dir, {"method": self.name, "options": spec.model_dump()})  # folds B ← C·B first
        save_portable(model, out_dir, base_model_name=ctx.loaded.spec)

    def load(self, base_model: Any, out_dir: Path) -> Any:
        from safepeft.finetune.salora.export import load_native

        return load_native(base_model, out_dir).eval()

    def trainable_state(self, model: Any) -> dict[str, Any]:
        from safepeft.finetune.salora.layer import salora_layers

        state = super().trainable_state(model)
        for name, layer in salora_layers(model):
            state.update({f"{name}.{key}": getattr(layer, key).detach().clone() for key in _FROZEN})
        return state

    def load_trainable_state(self, model: Any, state: dict[str, Any]) -> None:
        import torch

        from safepeft.finetune.salora.layer import salora_layers

        frozen = {k: v for k, v in state.items() if k.rpartition(".")[2] in _FROZEN}
        super().load_trainable_state(model, {k: v for k, v in state.items() if k not in frozen})
        layers = dict(salora_layers(model))
        with torch.no_grad():
            for key, tensor in frozen.items():
                name, _, attr = key.rpartition(".")
                getattr(layers[name], attr).copy_(tensor)


def _refusal_rate(rows: list[Any]) -> float:
    """Share of safety replies the refusal classifier reads as refusals (low: the model may not be aligned)."""
    from safepeft.classifiers.refusal import classify_refusal

    return sum(classify_refusal(row.messages[-1]["content"]).refused for row in rows) / len(rows)


METHOD = SaLoraMethod()
