"""A tiny base -> aligned -> LoRA family for the weight-writing repairs (RESTA, SafeMERGE, Safe Delta, LoX).

Unlike conftest's `build_triple` (whose V is as large as the weights, fine for SafeLoRA's geometry), the aligned model
here differs from the base by a small low-rank V on every 2-D weight and a small change to the norms, as a real
alignment fine-tune does, so the lineage check passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file


@dataclass
class Family:
    base: Path
    aligned: Path
    adapter: Path
    targets: tuple[str, ...]


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(directory / "model.safetensors")


def build_family(root: Path, seed: int = 0, v_rank: int = 3, scale: float = 0.02, rank: int = 2,
                 targets: tuple[str, ...] = ("q_proj", "v_proj"), layers: int = 2) -> Family:
    from peft import LoraConfig, get_peft_model

    from safepeft.models.tiny import tiny_llama, tiny_tokenizer

    gen = torch.Generator().manual_seed(seed + 100)
    model = tiny_llama(seed, num_hidden_layers=layers)
    model.save_pretrained(root / "base")
    tiny_tokenizer().save_pretrained(root / "base")
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                d_out, d_in = param.shape
                low = torch.randn(d_out, v_rank, generator=gen) @ torch.randn(v_rank, d_in, generator=gen)
                param += scale * float(param.norm()) * low / float(low.norm())
            elif param.dim() == 1:
                param += 0.01 * torch.randn(param.shape, generator=gen)
    model.save_pretrained(root / "aligned")
    tiny_tokenizer().save_pretrained(root / "aligned")
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets)))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    peft_model.save_pretrained(root / "adapter")
    return Family(root / "base", root / "aligned", root / "adapter", targets)


def merged_finetuned(family: Family) -> dict[str, torch.Tensor]:
    """θ_ft = aligned + adapter, merged by PEFT itself (an independent reference for the repairs' own merge)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(family.aligned, torch_dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, family.adapter).merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}


def family_args(family, out) -> list[str]:
    """`--base/--aligned/--adapter/--out` of a repair command over ``family``."""
    return ["--base", str(family.base), "--aligned", str(family.aligned), "--adapter", str(family.adapter),
            "--out", str(out)]
