"""SaLoRA calibration on the embedded model: safepeft's streamed Grams + exact eigh vs the official recipe.

Both sides calibrate U_s (r_s = 32) for q_proj and v_proj of all 30 blocks (60 modules) of the embedded
SmolLM2-135M on the same safety batches (harmful prompts + the built-in refusals, response tokens only).

- safepeft: `collect_grams` (forward pre-hooks adding x·xᵀ into one fp32 Gram per distinct input) and
  `top_output_directions` (eigenvectors of W·G·Wᵀ in float64).
- official (lora_train_act.py + lowrank_prune's recorder): keep every response-token input row of every target
  module, F = X·Wᵀ, `torch.svd_lowrank(F, q=r_s, niter=30)`, and C = I − U·Uᵀ materialised per module.

Reported: wall time of each side (forward passes included), the calibration state each keeps (bytes of stored
tensors, computed from shapes: Grams vs recorded features + dense C), and how close each U_s is to the exact top-r_s
right singular subspace of F (float64 SVD): mean over modules of ‖U_exactᵀ·U‖_F² / r_s (1 = same subspace).
Timings on a shared CPU are noisy; the memory and accuracy columns are not.
Usage: .venv/bin/python bench/salora.py [--samples 128] [--batch-size 16]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")

import torch  # noqa: E402

from safepeft.finetune.base import IGNORE_INDEX  # noqa: E402
from safepeft.finetune.salora import data  # noqa: E402
from safepeft.finetune.salora.calibration import collect_grams  # noqa: E402
from safepeft.finetune.salora.subspace import top_output_directions  # noqa: E402
from safepeft.finetune.salora.targets import resolve_targets  # noqa: E402
from safepeft.models.loader import load_model  # noqa: E402

RANK = 32


def official(model, names, batches):
    """Record inputs at response positions per module, then svd_lowrank(F, q=r_s, niter=30) and a dense C."""
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    mask: list[torch.Tensor] = []

    def hook(name):
        return lambda module, args: rows[name].append(args[0][mask[0]].detach().float())

    handles = [model.get_submodule(n).register_forward_pre_hook(hook(n)) for n in names]
    for batch in batches:
        mask[:] = [batch["labels"] != IGNORE_INDEX]
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    for handle in handles:
        handle.remove()
    features, stored, dense_c = {}, 0, 0
    for name in names:
        x = torch.cat(rows.pop(name))  # (N, d_in)
        weight = model.get_submodule(name).weight.float()
        f = x @ weight.T  # (N, d_out)
        stored += x.numel() * 4
        _, _, v = torch.svd_lowrank(f, q=RANK, niter=30)
        c = torch.eye(weight.shape[0]) - v @ v.T  # materialised, as in the official code
        dense_c += c.numel() * 4
        features[name] = (v, f)
    return features, stored, dense_c


def agreement(basis: torch.Tensor, features: torch.Tensor) -> float:
    exact = torch.linalg.svd(features.double(), full_matrices=False).Vh[:RANK].T
    return float((exact.T @ basis.double()).pow(2).sum() / RANK)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    loaded = load_model("embedded")
    model, tokenizer = loaded.model, loaded.tokenizer
    names = resolve_targets(model, ["q_proj", "v_proj"])
    rows = data.sample(data.safety_rows(None), args.samples, seed=0)
    batches = data.batched(data.tokenize_rows(tokenizer, rows), args.batch_size, tokenizer.pad_token_id)

    start = time.perf_counter()
    grams, tokens = collect_grams(model, names, batches)
    ours = {n: top_output_directions(model.get_submodule(n).weight, grams[n], RANK) for n in names}
    ours_s = time.perf_counter() - start
    gram_bytes = sum({id(g): g.numel() * 4 for g in grams.values()}.values())
    del grams

    start = time.perf_counter()
    theirs, stored, dense_c = official(model, names, batches)
    theirs_s = time.perf_counter() - start

    ours_agree = sum(agreement(ours[n], theirs[n][1]) for n in names) / len(names)
    theirs_agree = sum(agreement(theirs[n][0], theirs[n][1]) for n in names) / len(names)
    print(json.dumps({
        "bench": "salora_calibration", "model": "embedded", "modules": len(names), "response_tokens": tokens,
        "safety_rank": RANK, "safepeft_s": round(ours_s, 2), "official_s": round(theirs_s, 2),
        "safepeft_state_mb": round(gram_bytes / 2**20, 2), "safepeft_c_mb": round(
            sum(u.numel() * 4 for u in ours.values()) / 2**20, 2),
        "official_features_mb": round(stored / 2**20, 2), "official_c_mb": round(dense_c / 2**20, 2),
        "safepeft_subspace_agreement": round(ours_agree, 6), "official_subspace_agreement": round(theirs_agree, 6),
    }))


if __name__ == "__main__":
    main()
