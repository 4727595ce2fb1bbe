"""slow: SaLoRA vs plain LoRA with the same budget on the aligned embedded model, fine-tuned on builtin:arithmetic.

Both adapt q_proj/v_proj with r = 16, α = 16, no dropout, the same steps, batch, learning rate, seed and data; the
held-out harmful prompts of the align issue are answered greedily (32 new tokens) and read by the refusal
classifier. Both harmful rates are printed (run with -s) and recorded in docs/salora.md.

The issue asks to assert "SaLoRA keeps a lower harmful rate than LoRA" only if that holds across the seeds tried. It
did not (docs/salora.md, "Results on the embedded model"), so this test asserts what SaLoRA guarantees by
construction, on the real model: the trained update has no component in any adapted layer's safety subspace.
"""

from __future__ import annotations

import json

import pytest
import torch

# docs/salora.md's table uses batch 8; CI runs batch 4 to fit its time budget (same code path, numbers printed)
STEPS, BATCH, LR = 16, 4, 1e-3
SHARED = dict(rank=16, alpha=16.0, dropout=0.0, target_modules=["q_proj", "v_proj"])
# the aligned model learned exactly these refusals in `align`, so the written replies are its own (no generation)
SALORA = dict(safety_samples=32, task_samples=32, safety_responses="data")


def _harmful_rate(loaded, prompts) -> float:
    from safepeft.classifiers.refusal import classify_refusal
    from safepeft.records import GenParams

    outputs = loaded.generator(batch_size=len(prompts), progress=False).generate(prompts, GenParams(max_new_tokens=32))
    return sum(classify_refusal(text).complied for text in outputs) / len(outputs)


def _check_safety_subspace_untouched(model) -> None:
    from safepeft.finetune.salora.layer import salora_layers

    layers = list(salora_layers(model))
    assert len(layers) == 2 * model.config.num_hidden_layers  # q_proj and v_proj of every block
    for name, layer in layers:
        with torch.no_grad():
            delta = layer.delta_weight()  # (W_res + s·C·B·A) − W
            leaked = layer.safety_basis.T @ delta
        assert delta.norm() > 1e-3, f"{name} did not train"
        assert leaked.norm() <= 1e-4 * delta.norm(), f"{name}: the update reaches into the safety subspace"


@pytest.mark.slow
def test_salora_vs_lora_on_the_aligned_embedded_model(aligned_embedded_dir, tmp_path):
    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.builtin import safety_heldout_prompts
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec, train
    from safepeft.models.loader import load_model

    prompts = [row["prompt"] for row in safety_heldout_prompts()]
    results = {}
    for method, extra in (("salora", SALORA), ("lora", {})):
        loaded = load_model(str(aligned_embedded_dir))
        data = load_train_data(DataSpec(source="builtin:arithmetic", limit=STEPS * BATCH), loaded.tokenizer, 256)
        spec = TrainSpec(method=method, max_steps=STEPS, batch_size=BATCH, learning_rate=LR, schedule="constant")
        method_spec = FINETUNE_METHODS.get(method).make_spec(**SHARED, **extra)
        result = train(loaded, data, spec, method_spec, tmp_path / method, show_progress=False)
        losses = result.record.losses
        assert sum(losses[-4:]) < sum(losses[:4]), f"{method} did not learn the task: {losses}"
        if method == "salora":
            _check_safety_subspace_untouched(result.model)
        loaded.model = result.model
        results[method] = {"harmful": _harmful_rate(loaded, prompts), "loss_first": losses[0], "loss_last": losses[-1]}
    print("salora-vs-lora", json.dumps(results))
