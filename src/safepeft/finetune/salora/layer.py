"""The SaLoRA linear layer and how it is attached to (any) causal LM by module name.

h = W_res·x + s·C·B·A·x with W_res = W − s·C·B₀·A₀, computed as  h = W·x + s·((C·B)·A·drop(x) − (C·B₀)·A₀·x):
the same function, but the base weight stays untouched (other stages still see the original model), no dense
W_res is stored, and step 0 is bit-exact in any dtype (both terms are the same computation on the same values).
C = I − U_s·U_sᵀ is applied to the r columns of B (d_out·r·r_s flops per call, nothing per token) and never
materialised. Only A and B train; the gradient reaches B through C·B, so the component of B inside span(U_s) has
no effect on the output (Adam may still move it; ``fold_`` drops it).

We wrap ``nn.Linear`` modules ourselves instead of patching PEFT's LoRA layer: PEFT has no hook for a projection of
B, and a PEFT LoRA whose B is projected behind its back would merge/save wrong (PEFT's merge ignores C). The
portable export (``export.py``) turns the trained layer into an ordinary PEFT LoRA.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from safepeft.finetune.salora.init import ModuleInit
from safepeft.finetune.salora.subspace import project_out


class SaLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus SaLoRA's safety-projected low-rank update (adapter math in fp32)."""

    def __init__(self, base_layer: nn.Linear, init: ModuleInit, scaling: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.scaling = scaling
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        device = base_layer.weight.device
        self.lora_A = nn.Parameter(init.lora_A0.to(device, torch.float32).clone())  # (r, d_in)
        self.lora_B = nn.Parameter(init.lora_B0.to(device, torch.float32).clone())  # (d_out, r)
        self.register_buffer("lora_A0", init.lora_A0.to(device, torch.float32).clone())
        self.register_buffer("lora_B0", init.lora_B0.to(device, torch.float32).clone())
        self.register_buffer("safety_basis", init.safety_basis.to(device, torch.float32).clone())  # (d_out, r_s)

    @property
    def weight(self) -> torch.Tensor:
        """The frozen original W: model code that reads ``q_proj.weight`` (dtype checks) keeps working, as PEFT."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        x32 = x.to(torch.float32)
        trained = F.linear(F.linear(self.dropout(x32), self.lora_A), project_out(self.lora_B, self.safety_basis))
        initial = F.linear(F.linear(x32, self.lora_A0), project_out(self.lora_B0, self.safety_basis))
        return out + (self.scaling * (trained - initial)).to(out.dtype)  # (..., d_out)

    def delta_weight(self) -> torch.Tensor:
        """(W_res + s·C·B·A) − W = s·C·(B·A − B₀·A₀), shape (d_out, d_in), fp32."""
        basis = self.safety_basis
        return self.scaling * (project_out(self.lora_B, basis) @ self.lora_A
                               - project_out(self.lora_B0, basis) @ self.lora_A0)

    def residual_weight(self) -> torch.Tensor:
        """The frozen residual base W_res = W − s·C·B₀·A₀ (materialised only on request), fp32."""
        correction = project_out(self.lora_B0, self.safety_basis) @ self.lora_A0
        return self.base_layer.weight.float() - self.scaling * correction

    @torch.no_grad()
    def fold_(self) -> None:
        """B ← C·B and B₀ ← C·B₀ in place: the canonical (saved) form. The same function up to rounding, and
        afterwards this layer and one rebuilt from the saved tensors compute bit-identical outputs."""
        self.lora_B.copy_(project_out(self.lora_B, self.safety_basis))
        self.lora_B0.copy_(project_out(self.lora_B0, self.safety_basis))


def attach(model: nn.Module, inits: Mapping[str, ModuleInit], scaling: float, dropout: float = 0.0) -> nn.Module:
    """Replace each named ``nn.Linear`` by a SaLoRALinear (keyed by module NAME) and freeze all but A and B."""
    for param in model.parameters():
        param.requires_grad_(False)
    for name, init in inits.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = getattr(parent, child)
        if not isinstance(base, nn.Linear):
            raise TypeError(f"SaLoRA target {name} is {type(base).__name__}, not nn.Linear")
        setattr(parent, child, SaLoRALinear(base, init, scaling, dropout))
    return model


def salora_layers(model: nn.Module) -> Iterator[tuple[str, SaLoRALinear]]:
    """(module name as in the base model, layer) for every SaLoRA layer, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, SaLoRALinear):
            yield name, module
