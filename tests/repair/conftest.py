"""Builders for repair tests: alignment deltas with a known column space, and tiny base/aligned/adapter triples.

A module is "aligned" when its LoRA B lies in the column space U of V = W_aligned − W_base (C maps B·A close to
itself) and "misaligned" when B is orthogonal to U (C annihilates it). With V = U·Wᵀ·√p, C = U·Uᵀ exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch


def orthonormal(d: int, p: int, gen: torch.Generator) -> torch.Tensor:
    """(d, p) with orthonormal columns."""
    q, _ = torch.linalg.qr(torch.randn(d, p, generator=gen, dtype=torch.float64))
    return q.float()


def structured_v(d_out: int, d_in: int, p: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """V (d_out, d_in) of rank p with C = V·Vᵀ/‖V‖_F = U·Uᵀ, and its column basis U (d_out, p)."""
    u, w = orthonormal(d_out, p, gen), orthonormal(d_in, p, gen)
    return (u @ w.T) * p**0.5, u


def b_in_span(u: torch.Tensor, r: int, gen: torch.Generator, noise: float = 1e-3) -> torch.Tensor:
    """B (d_out, r) inside span(U), plus a little noise so distances are not all identical."""
    return u @ torch.randn(u.shape[1], r, generator=gen) + noise * torch.randn(u.shape[0], r, generator=gen)


def b_orthogonal(u: torch.Tensor, r: int, gen: torch.Generator) -> torch.Tensor:
    """B (d_out, r) orthogonal to span(U)."""
    raw = torch.randn(u.shape[0], r, generator=gen)
    return raw - u @ (u.T @ raw)


@dataclass
class Triple:
    """A tiny base model dir, an aligned model dir, an adapter dir, and which modules were built misaligned."""

    base: Path
    aligned: Path
    adapter: Path
    misaligned: set[str]
    modules: list[str] = field(default_factory=list)


def build_triple(root: Path, misaligned: set[str] | None = None, layers: int = 4, rank: int = 2,
                 targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj"), rank_pattern: dict | None = None,
                 alpha_pattern: dict | None = None, seed: int = 0) -> Triple:
    """Save base + aligned tiny Llamas (k/v are 12x36: GQA) and a LoRA adapter with chosen misaligned modules."""
    from peft import LoraConfig, get_peft_model

    from safepeft.models.tiny import tiny_llama, tiny_tokenizer

    gen = torch.Generator().manual_seed(seed)
    model = tiny_llama(seed, num_hidden_layers=layers)
    model.save_pretrained(root / "base")
    names = [f"model.layers.{i}.self_attn.{t}" for i in range(layers) for t in targets]
    misaligned = set(names[1::4] if misaligned is None else misaligned)
    bases = {}
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            weight = params[f"{name}.weight"]
            v, u = structured_v(weight.shape[0], weight.shape[1], 3, gen)
            weight += v
            bases[name] = u
    model.save_pretrained(root / "aligned")
    tiny_tokenizer().save_pretrained(root / "aligned")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), rank_pattern=rank_pattern or {},
                        alpha_pattern=alpha_pattern or {})
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for module_name, module in peft_model.base_model.model.named_modules():
            if module_name in bases:
                r = module.lora_A["default"].weight.shape[0]
                module.lora_A["default"].weight.copy_(torch.randn(r, module.in_features, generator=gen))
                u = bases[module_name]
                new_b = b_orthogonal(u, r, gen) if module_name in misaligned else b_in_span(u, r, gen)
                module.lora_B["default"].weight.copy_(new_b)
    peft_model.save_pretrained(root / "adapter")
    return Triple(root / "base", root / "aligned", root / "adapter", misaligned, names)


@pytest.fixture(scope="session")
def triple(tmp_path_factory: pytest.TempPathFactory) -> Triple:
    """4 layers x (q, k, v), rank 2; every 4th module (starting at the 2nd) is misaligned. Read-only for tests."""
    return build_triple(tmp_path_factory.mktemp("triple"))


@pytest.fixture
def make_triple():
    """Factory: make_triple(root, **build_triple_options) -> Triple."""
    return build_triple
