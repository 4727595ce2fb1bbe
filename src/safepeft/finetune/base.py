"""The fine-tuning method interface: every ``--method`` is one ``FinetuneMethod`` registered in FINETUNE_METHODS.

The trainer (``finetune/trainer.py``) owns everything that is the same for all methods: data, the loop, loss on
assistant tokens only, checkpoints, resume, progress, provenance. A method owns only three things:

1. ``spec_class``: a pydantic ``MethodSpec`` (extra=forbid, one docstring per field) with its hyper-parameters.
   The CLI turns ``--rank 8`` / ``--set key=value`` into ``method.make_spec(**options)``.
2. ``prepare(ctx)``: wrap ``ctx.loaded.model`` (the frozen base, fp32 on CPU / bf16 on GPU) into the model that is
   trained, and return it. Only the parameters meant to train may have ``requires_grad=True``. A method that needs
   a calibration pass (SaLoRA) runs it here over ``ctx.examples`` (tokenized training rows; ``collate`` batches
   them). ``prepare`` must be deterministic for a given ``ctx.seed``: ``--resume`` calls it again on a fresh base
   and then loads the checkpointed trainable tensors with ``load_trainable_state``.
3. ``save(model, out_dir, ctx)`` / ``load(base_model, out_dir)``: write the method's own output format into
   ``out_dir`` (never the base weights; the trainer adds ``safepeft_train.json`` and renames the directory into
   place atomically), and re-attach such an output to a base model for inference (used by the round-trip contract
   test over every registered method).

Contract for the module returned by ``prepare``: ``model(input_ids=, attention_mask=)`` runs the causal LM and
``model.get_output_embeddings()`` is the module that maps final hidden states to logits (PEFT models forward
both). The trainer hooks that module to compute logits only at positions that carry a label, so methods that
prepend virtual tokens work unchanged (the hook aligns on the right edge).

Checkpoints hold ``trainable_state(model)`` (default: every parameter with ``requires_grad``, by name) plus the
optimizer state, all as safetensors; override the two state methods only if a method trains something that is not
a parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from safepeft.errors import ConfigError, ResumeError
from safepeft.records.base import Spec

IGNORE_INDEX = -100  # label of tokens that carry no loss (prompt, padding), as in transformers


class MethodSpec(Spec):
    """Base of every method's hyper-parameters (strict: unknown keys are errors)."""


@dataclass(frozen=True)
class Example:
    """One tokenized training row: ``labels[i]`` is ``input_ids[i]`` on assistant tokens, else IGNORE_INDEX.

    ``source`` says where the row came from (``file:line``) for error messages.
    """

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    source: str = ""


@dataclass
class PrepareContext:
    """What a method may use to build its trainable model."""

    loaded: Any
    """The base ``LoadedModel`` (model, tokenizer, fingerprint); ``loaded.model`` is frozen and in eval mode."""
    examples: Sequence[Example]
    """The tokenized training set (in file order), e.g. for a calibration pass."""
    seed: int
    batch_size: int
    extras: dict[str, Any] = field(default_factory=dict)
    """Free-form facts a method wants recorded in safepeft_train.json (filled by the method, e.g. calibration size)."""


def collate(examples: Sequence[Example], pad_token_id: int) -> dict[str, Any]:
    """Right-pad a batch into ``input_ids``, ``attention_mask`` and ``labels`` tensors (batch, seq)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


class FinetuneMethod(ABC):
    """One fine-tuning method (see the module docstring for the contract)."""

    name: ClassVar[str]
    description: ClassVar[str]
    spec_class: ClassVar[type[MethodSpec]]
    writes: ClassVar[str]
    """The PEFT type of the adapter ``save`` writes (``peft_type`` in its adapter_config.json: LORA, IA3,
    PROMPT_TUNING, P_TUNING). What other stages ask before using it: repairs edit ``LORA`` adapters only."""
    default_learning_rate: ClassVar[float] = 2e-4
    """Used when the user gives no --lr (prompt methods need far larger rates than LoRA)."""

    def make_spec(self, **options: Any) -> MethodSpec:
        """Validate user options into this method's spec; unknown or bad values become a ConfigError."""
        try:
            return self.spec_class(**options)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()
            )
            fields = ", ".join(sorted(self.spec_class.model_fields))
            raise ConfigError(
                f"Invalid options for method {self.name!r} ({problems}).", f"Options of {self.name}: {fields}."
            ) from exc

    @abstractmethod
    def prepare(self, ctx: PrepareContext, spec: MethodSpec) -> Any:
        """Return the trainable model built around ``ctx.loaded.model`` (deterministic for ``ctx.seed``)."""

    @abstractmethod
    def save(self, model: Any, out_dir: Path, ctx: PrepareContext, spec: MethodSpec) -> None:
        """Write the method's output (no base weights) into ``out_dir``, which already exists."""

    @abstractmethod
    def load(self, base_model: Any, out_dir: Path) -> Any:
        """Attach an output written by ``save`` to ``base_model`` and return the model for inference."""

    def trainable_state(self, model: Any) -> dict[str, Any]:
        """The tensors a checkpoint must hold to restore training (default: parameters with requires_grad)."""
        return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    def load_trainable_state(self, model: Any, state: dict[str, Any]) -> None:
        """Copy checkpointed tensors back into the model built by ``prepare`` (names must match exactly)."""
        import torch

        params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if set(params) != set(state):
            missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
            raise ResumeError(
                f"Checkpoint does not match the {self.name} model (missing {missing[:3]}, unexpected {extra[:3]}).",
                "Resume with the same method options, or start over without --resume.",
            )
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)
