"""Calibration records target inputs at response-token positions only, one Gram per distinct input."""

import pytest
import torch
from numerics import fp32_atol
from salora_helpers import SAFETY_ROWS, batches, chat_example

from safepeft.errors import ConfigError, DataError
from safepeft.finetune.base import IGNORE_INDEX, collate
from safepeft.finetune.salora.calibration import collect_grams
from safepeft.finetune.salora.targets import resolve_targets


def _manual_grams(model, names, batch):
    """Reference: capture full inputs with plain hooks, then sum x·xᵀ over labelled positions by hand."""
    captured = {}
    handles = [model.get_submodule(n).register_forward_pre_hook(
        lambda m, args, n=n: captured.__setitem__(n, args[0].detach())) for n in names]
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    for h in handles:
        h.remove()
    keep = batch["labels"] != IGNORE_INDEX
    return {n: captured[n][keep].T @ captured[n][keep] for n in names}


def test_grams_sum_response_positions_only(tiny_llama, tiny_tokenizer):
    model = tiny_llama(0)
    names = resolve_targets(model, ["q_proj", "v_proj", "o_proj", "down_proj"])
    batch = batches(tiny_tokenizer, SAFETY_ROWS[:3], batch_size=3)[0]
    grams, tokens = collect_grams(model, names, [batch])
    assert tokens == int((batch["labels"] != IGNORE_INDEX).sum())
    expected = _manual_grams(model, names, batch)
    for name in names:
        torch.testing.assert_close(grams[name], expected[name], atol=1e-4, rtol=1e-4)
    # q and v of one block read the same hidden states: one shared Gram, not two copies
    assert grams["model.layers.0.self_attn.q_proj"] is grams["model.layers.0.self_attn.v_proj"]
    assert grams["model.layers.0.self_attn.o_proj"].shape == (36, 36)
    assert grams["model.layers.1.mlp.down_proj"].shape == (37, 37)


def test_prompt_only_sequence_contributes_nothing(tiny_llama, tiny_tokenizer):
    model = tiny_llama(0)
    names = resolve_targets(model, ["q_proj", "up_proj"])
    answered = chat_example(tiny_tokenizer, *SAFETY_ROWS[0])
    prompt_only = chat_example(tiny_tokenizer, SAFETY_ROWS[1][0], None)
    alone, tokens_alone = collect_grams(model, names, [collate([answered], tiny_tokenizer.pad_token_id)])
    mixed, tokens_mixed = collect_grams(model, names, [collate([prompt_only, answered], tiny_tokenizer.pad_token_id)])
    assert tokens_alone == tokens_mixed > 0
    for name in names:
        # Another batch-mate changes the kernels' summation order, not the math (tolerance: tests/numerics.py).
        torch.testing.assert_close(mixed[name], alone[name], rtol=0,
                                   atol=fp32_atol(alone[name], tokens_alone * model.config.hidden_size, 3))
    with pytest.raises(DataError, match="no response tokens"):
        collect_grams(model, names, [collate([prompt_only], tiny_tokenizer.pad_token_id)])


def test_hooks_are_removed_after_calibration(tiny_llama, tiny_tokenizer):
    model = tiny_llama(0)
    names = resolve_targets(model, ["k_proj"])
    collect_grams(model, names, batches(tiny_tokenizer, SAFETY_ROWS))
    assert all(not model.get_submodule(n)._forward_pre_hooks for n in names)


def test_target_resolution_by_name(tiny_llama):
    model = tiny_llama(0)
    names = resolve_targets(model, ["q_proj", "down_proj"])
    assert names == [
        "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj",
        "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj",
    ]
    assert resolve_targets(model, ["model.layers.1.self_attn.v_proj"]) == ["model.layers.1.self_attn.v_proj"]
    with pytest.raises(ConfigError, match="c_attn.*linear layers: down_proj, gate_proj"):
        resolve_targets(model, ["c_attn"])
    with pytest.raises(ConfigError, match="non-Linear"):
        resolve_targets(model, ["self_attn"])
    assert resolve_targets(model, ["lm_head", "o_proj"])[-1].endswith("o_proj")  # lm_head is never a target
    assert len(resolve_targets(model, ["all-linear"])) == 2 * 7
