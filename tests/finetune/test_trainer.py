"""Trainer pieces: schedule, data order, output-directory rules, provenance."""

from __future__ import annotations

import json

import pytest

from safepeft.errors import ConfigError, ResumeError
from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.trainer import TrainSpec, learning_rate, step_indices, total_steps, train
from safepeft.models.loader import load_model


def test_schedules():
    spec = TrainSpec(warmup_steps=2, schedule="linear")
    rates = [learning_rate(spec, 1.0, step, 10) for step in range(10)]
    assert rates[:2] == [0.5, 1.0] and rates[2] == 1.0 and rates[-1] < rates[3]
    assert rates[2:] == sorted(rates[2:], reverse=True)
    cosine = [learning_rate(TrainSpec(schedule="cosine"), 1.0, s, 10) for s in range(10)]
    assert cosine[0] == 1.0 and all(a >= b for a, b in zip(cosine, cosine[1:], strict=False))
    assert learning_rate(TrainSpec(schedule="constant"), 0.3, 7, 10) == 0.3


def test_steps_from_epochs_and_max_steps():
    assert total_steps(TrainSpec(epochs=2, batch_size=4, grad_accum=2), 20) == 5
    assert total_steps(TrainSpec(max_steps=7, epochs=100), 20) == 7


def test_data_order_is_a_seeded_permutation_per_epoch():
    cache: dict[int, list[int]] = {}
    epoch = [i for step in range(3) for i in step_indices(step, 4, 12, seed=5, cache=cache)]
    assert sorted(epoch) == list(range(12)) and epoch != list(range(12))
    assert step_indices(1, 4, 12, seed=5, cache={}) == epoch[4:8]
    assert step_indices(0, 4, 12, seed=6, cache={}) != epoch[:4]


def _run(tiny_model_dir, data, out, **kwargs):
    spec = TrainSpec(max_steps=2, batch_size=2, learning_rate=1e-2)
    return train(load_model(str(tiny_model_dir)), data, spec, FINETUNE_METHODS.get("lora").make_spec(), out,
                 show_progress=False, **kwargs)


def test_output_directory_rules(tiny_model_dir, train_data, tmp_path):
    out = tmp_path / "out"
    first = _run(tiny_model_dir, train_data, out)
    record = json.loads((out / "safepeft_train.json").read_text())
    assert record["hyperparameters"]["learning_rate"] == 1e-2 and record["seed"] == 0
    assert record["data"]["rows"] == 4 and record["data"]["skipped_rows"] == 0
    assert record["final_loss"] == record["losses"][-1] and record["resumed_from"] == []
    with pytest.raises(ConfigError, match="--resume"):
        _run(tiny_model_dir, train_data, out)
    again = _run(tiny_model_dir, train_data, out, resume=True)  # finished run: reused, not retrained
    assert again.record.created_at == first.record.created_at
    _run(tiny_model_dir, train_data, out, overwrite=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not written by safepeft"):
        _run(tiny_model_dir, train_data, foreign, overwrite=True)
    assert (foreign / "notes.txt").exists()


def test_resume_with_other_settings_is_refused(tiny_model_dir, train_data, tmp_path):
    out = tmp_path / "out"
    _run(tiny_model_dir, train_data, out)
    other = TrainSpec(max_steps=3, batch_size=2, learning_rate=1e-2)
    with pytest.raises(ResumeError, match="different"):
        train(load_model(str(tiny_model_dir)), train_data, other, FINETUNE_METHODS.get("lora").make_spec(), out,
              resume=True, show_progress=False)


def test_default_learning_rate_comes_from_the_method(tiny_model_dir, train_data, tmp_path):
    spec = TrainSpec(method="prompt-tuning", max_steps=1, batch_size=2)
    method = FINETUNE_METHODS.get("prompt-tuning")
    result = train(load_model(str(tiny_model_dir)), train_data, spec, method.make_spec(), tmp_path / "pt",
                   show_progress=False)
    assert result.record.hyperparameters["learning_rate"] == method.default_learning_rate


def test_prompt_tuning_init_text_uses_token_embeddings(tiny_model_dir):
    from safepeft.finetune.base import PrepareContext

    loaded = load_model(str(tiny_model_dir))
    method = FINETUNE_METHODS.get("prompt-tuning")
    model = method.prepare(PrepareContext(loaded, [], 0, 2), method.make_spec(num_virtual_tokens=5, init_text="ab"))
    weight = model.prompt_encoder[model.active_adapter].embedding.weight
    ids = loaded.tokenizer("ab", add_special_tokens=False)["input_ids"]
    words = model.get_input_embeddings().weight
    assert [bool(weight[i].equal(words[ids[i % len(ids)]])) for i in range(5)] == [True] * 5


def test_default_targets_come_from_the_table_and_unknown_architectures_ask(tiny_llama):
    from safepeft.finetune.targets import default_targets

    config = tiny_llama().config
    assert default_targets("lora", config) == ["q_proj", "v_proj"]
    assert default_targets("ia3-feedforward", config) == ["down_proj"]
    config.model_type = "brand-new-arch"
    with pytest.raises(ConfigError, match="--target-modules"):
        default_targets("lora", config)
