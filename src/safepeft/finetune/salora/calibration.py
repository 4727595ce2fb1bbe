"""Calibration: stream the inputs of each target linear at response-token positions into Gram matrices.

Forward pre-hooks on the target ``nn.Linear`` modules (no model surgery) select the rows of the input at positions
whose label is not IGNORE_INDEX, i.e. the assistant tokens the SFT loss uses, and accumulate G = Σ x·xᵀ in fp32.
Memory is bounded by the number of distinct inputs, d_in² floats each, independent of the number of tokens:
modules fed the very same tensor (q/k/v of one block, gate/up) share one Gram, detected by tensor identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from safepeft.errors import ConfigError, DataError
from safepeft.finetune.base import IGNORE_INDEX


class GramRecorder:
    """Hooks that add x·xᵀ over masked positions to one fp32 Gram per distinct target input.

    Set ``mask`` ((batch, seq) bool) before each forward pass; ``gram(name)`` returns the result afterwards.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        self.mask: torch.Tensor | None = None
        self.tokens = 0
        self._grams: dict[str, torch.Tensor] = {}
        self._owner: dict[str, str] = {}  # module name -> name of the module whose Gram it shares
        self._last: tuple[torch.Tensor, str] | None = None
        self._handles = [model.get_submodule(n).register_forward_pre_hook(self._hook(n)) for n in names]

    def _hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            owner = self._last[1] if self._last is not None and self._last[0] is x else name
            if self._owner.setdefault(name, owner) != owner:
                raise RuntimeError(f"input sharing of {name} changed between batches; cannot share its Gram")
            self._last = (x, owner)
            if owner == name:
                self._accumulate(name, x)

        return hook

    def _accumulate(self, name: str, x: torch.Tensor) -> None:
        if self.mask is None:
            raise RuntimeError("GramRecorder.mask must be set before each forward pass")
        flat = x.reshape(-1, x.shape[-1])  # (batch·seq, d_in)
        if flat.shape[0] != self.mask.numel():
            raise ConfigError(
                f"SaLoRA target {name} sees {flat.shape[0]} input rows for {self.mask.numel()} token positions.",
                "Target projections that run once per token (attention/MLP projections, not MoE experts).",
            )
        rows = flat[self.mask.reshape(-1).to(x.device)].float()  # (n_tokens, d_in)
        if name not in self._grams:
            self._grams[name] = torch.zeros(x.shape[-1], x.shape[-1], device=x.device, dtype=torch.float32)
        self._grams[name].addmm_(rows.T, rows)

    def set_batch(self, mask: torch.Tensor) -> None:
        """Mask ((batch, seq) bool) of the positions to record in the next forward pass."""
        self.mask = mask
        self._last = None  # forget the previous batch's activations
        self.tokens += int(mask.sum())

    def gram(self, name: str) -> torch.Tensor:
        """G (d_in, d_in) fp32 of module ``name`` (shared with the module that got the same input)."""
        owner = self._owner[name]
        return self._grams[owner]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._last = None


@torch.no_grad()
def collect_grams(
    model: nn.Module, names: Sequence[str], batches: Iterable[dict[str, torch.Tensor]], progress: Any = None
) -> tuple[dict[str, torch.Tensor], int]:
    """Run ``model`` over ``batches`` (input_ids, attention_mask, labels) and return ({name: G}, response tokens).

    ``progress`` (optional) is called once per batch. Positions with label IGNORE_INDEX (prompt, padding)
    contribute nothing.
    """
    recorder = GramRecorder(model, names)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            recorder.set_batch(batch["labels"] != IGNORE_INDEX)
            model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
            if progress is not None:
                progress()
    finally:
        recorder.close()
        model.train(was_training)
    if recorder.tokens == 0:
        raise DataError(
            "The SaLoRA calibration set has no response tokens (every label is masked).",
            "Calibration rows need an assistant answer after the prompt.",
        )
    return {name: recorder.gram(name) for name in names}, recorder.tokens
