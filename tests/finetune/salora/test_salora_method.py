"""`--method salora` through the FinetuneMethod interface on the tiny model (no trainer needed)."""

import json

import pytest
import torch
from salora_helpers import TASK_ROWS, chat_example, task_logits, train_steps

from safepeft.errors import ConfigError
from safepeft.finetune.base import PrepareContext
from safepeft.finetune.salora import data
from safepeft.finetune.salora.method import METHOD
from safepeft.models.loader import attach_adapter, load_model

OPTIONS = dict(rank=4, safety_rank=6, task_rank=8, safety_samples=6, task_samples=4, reply_tokens=8,
               target_modules=["q_proj", "v_proj", "down_proj"])


def _ctx(loaded, tokenizer, seed=0):
    examples = [chat_example(tokenizer, p, a) for p, a in TASK_ROWS]
    return PrepareContext(loaded=loaded, examples=examples, seed=seed, batch_size=4)


def test_defaults_follow_the_paper_code():
    spec = METHOD.make_spec()
    assert (spec.rank, spec.alpha, spec.safety_rank, spec.task_rank) == (16, 16.0, 32, 32)
    assert (spec.safety_samples, spec.task_samples, spec.dropout) == (128, 128, 0.0)
    with pytest.raises(ConfigError, match="safety_rnk"):
        METHOD.make_spec(safety_rnk=3)


def test_prepare_save_load_round_trip(tiny_loaded, tiny_model_dir, tmp_path):
    tokenizer = tiny_loaded.tokenizer
    base_logits = task_logits(tiny_loaded.model, tokenizer)
    ctx = _ctx(tiny_loaded, tokenizer)
    spec = METHOD.make_spec(**OPTIONS)
    model = METHOD.prepare(ctx, spec)
    info = ctx.extras["salora"]
    assert info["target_modules"] == 6 and info["safety_rows"] == 6 and info["task_rows"] == 4
    assert info["safety_tokens"] > 0 and 0.0 <= info["safety_refusal_rate"] <= 1.0
    torch.testing.assert_close(task_logits(model, tokenizer), base_logits, atol=1e-4, rtol=0)
    train_steps(model, tokenizer)
    before_save = task_logits(model, tokenizer)
    METHOD.save(model, tmp_path, ctx, spec)
    trained = task_logits(model, tokenizer)  # saving folds B into C·B in place: same function up to rounding
    torch.testing.assert_close(trained, before_save, atol=1e-4, rtol=1e-4)
    assert {"adapter_config.json", "adapter_model.safetensors", "salora_config.json",
            "salora_model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "salora_config.json").read_text())["options"]["safety_rank"] == 6
    native = METHOD.load(load_model(str(tiny_model_dir)).model, tmp_path)
    assert torch.equal(task_logits(native, tokenizer), trained)
    portable = load_model(str(tiny_model_dir))  # what `safepeft generate --adapter DIR` does
    attach_adapter(portable, tmp_path)
    torch.testing.assert_close(task_logits(portable.model, tokenizer), trained, atol=1e-4, rtol=1e-4)


def test_checkpoint_state_restores_the_exact_model(tiny_loaded, tiny_model_dir):
    tokenizer = tiny_loaded.tokenizer
    spec = METHOD.make_spec(**OPTIONS)
    model = METHOD.prepare(_ctx(tiny_loaded, tokenizer), spec)
    train_steps(model, tokenizer, steps=2)
    state = METHOD.trainable_state(model)
    assert any(k.endswith(".safety_basis") for k in state) and any(k.endswith(".lora_B") for k in state)
    # another seed samples other calibration rows: the checkpointed U_s, A₀, B₀ must win over the recomputed ones
    fresh = METHOD.prepare(_ctx(load_model(str(tiny_model_dir)), tokenizer, seed=1), spec)
    key = next(k for k in state if k.endswith("safety_basis"))
    assert not torch.equal(METHOD.trainable_state(fresh)[key], state[key])
    METHOD.load_trainable_state(fresh, dict(state))
    torch.testing.assert_close(task_logits(fresh, tokenizer), task_logits(model, tokenizer), atol=1e-6, rtol=0)


def test_ranks_that_do_not_fit_a_target_are_config_errors(tiny_loaded):
    spec = METHOD.make_spec(**{**OPTIONS, "safety_rank": 12})  # k/v of the tiny model have d_out = 12
    with pytest.raises(ConfigError, match=r"v_proj of shape \(12, 36\): safety_rank 12"):
        METHOD.prepare(_ctx(tiny_loaded, tiny_loaded.tokenizer), spec)


def test_safety_rows_keep_harmful_requests_only():
    rows = data.safety_rows(None)
    assert len(rows) >= 128 and all(row.meta["kind"] == "harmful" for row in rows)
    assert all(row.messages[-1]["role"] == "assistant" for row in rows)
    assert data.sample(rows, 5, seed=1) == data.sample(rows, 5, seed=1) != data.sample(rows, 5, seed=2)


def test_model_replies_replace_written_refusals(tiny_loaded):
    rows = data.safety_rows(None)[:3]
    replaced = data.with_model_replies(tiny_loaded, rows, batch_size=3, max_new_tokens=6)
    for before, after in zip(rows, replaced, strict=True):
        assert after.messages[:-1] == before.messages[:-1]
        assert after.messages[-1]["role"] == "assistant"
        assert after.messages[-1]["content"] != before.messages[-1]["content"]
