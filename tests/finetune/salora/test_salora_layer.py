"""The SaLoRA layer on a tiny Llama: step-0 equality, the safety invariant after training, module-name keying."""

import torch
from salora_helpers import SAFETY_ROWS, batches, task_logits, train_steps

from safepeft.finetune.salora.calibration import collect_grams
from safepeft.finetune.salora.layer import SaLoRALinear, salora_layers
from safepeft.finetune.salora.subspace import top_output_directions


def test_step0_logits_equal_base(calibrated, tiny_tokenizer):
    base, model, _ = calibrated(("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"), scaling=0.5)
    step0, original = task_logits(model, tiny_tokenizer), task_logits(base, tiny_tokenizer)
    torch.testing.assert_close(step0, original, atol=1e-4, rtol=0)
    # the residual base really differs from W, so the equality is not vacuous
    layer = model.get_submodule("model.layers.0.self_attn.q_proj")
    assert (layer.residual_weight() - layer.base_layer.weight).abs().max() > 1e-2


def test_only_A_and_B_train(calibrated):
    _, model, _ = calibrated(("q_proj", "v_proj"))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable and all(n.endswith((".lora_A", ".lora_B")) for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # 2 blocks × (q, v) × (A, B)


def test_safety_invariant_after_training(calibrated, tiny_tokenizer):
    """U_sᵀ(W_res + s·C·B·A)x = U_sᵀ·W·x for random x, once A and B have moved."""
    base, model, _ = calibrated(("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"))
    train_steps(model, tiny_tokenizer)
    torch.manual_seed(0)
    for name, layer in salora_layers(model):
        assert (layer.lora_B - layer.lora_B0).abs().max() > 1e-3, f"{name} did not train"
        weight = base.get_submodule(name).weight  # the original W
        effective = layer.residual_weight() + layer.scaling * _projected(layer)  # W_res + s·C·B·A
        x = torch.randn(weight.shape[1], 8)
        u = layer.safety_basis
        torch.testing.assert_close(u.T @ (effective @ x), u.T @ (weight @ x), atol=1e-4, rtol=1e-4)
        assert (effective - weight).abs().max() > 1e-3  # the update outside the safety subspace is real
        # and the module's actual forward computes that same effective weight
        torch.testing.assert_close(layer(x.T), x.T @ effective.T, atol=1e-4, rtol=1e-4)


def _projected(layer: SaLoRALinear):
    """C·B·A, computed densely here (d_out × d_out C) as an independent reference."""
    c = torch.eye(layer.safety_basis.shape[0]) - layer.safety_basis @ layer.safety_basis.T
    return c @ layer.lora_B @ layer.lora_A


def test_each_module_gets_its_own_subspace_by_name(calibrated, tiny_tokenizer):
    """Multi-module targets: C of module N is computed from N's weight and inputs (no index arithmetic)."""
    base, model, inits = calibrated(("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"))
    names = list(inits)
    assert names == [n for n, _ in salora_layers(model)] and len(names) == 10
    grams, _ = collect_grams(base, names, batches(tiny_tokenizer, SAFETY_ROWS))
    for name in names:
        layer = model.get_submodule(name)
        expected = top_output_directions(base.get_submodule(name).weight, grams[name], 6)
        torch.testing.assert_close(layer.safety_basis @ layer.safety_basis.T, expected @ expected.T,
                                   atol=1e-4, rtol=0)
        assert layer.safety_basis.shape[0] == base.get_submodule(name).weight.shape[0]
