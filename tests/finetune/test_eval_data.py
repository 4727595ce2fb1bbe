"""`train --eval-data` (issue #15): a validation loss every eval_steps and at the end, in progress and the record."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from finetune_helpers import write_jsonl

from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.trainer import TrainSpec, eval_loss, run_key, train

# Different rows from SHORT_ROWS and in another format: the eval set goes through the same readers as --data.
EVAL_ROWS = [
    {"instruction": "colour of grass?", "input": "", "output": "green."},
    {"instruction": "3+3?", "input": "", "output": "6."},
    {"instruction": "say bye", "input": "", "output": "bye!"},
]


@pytest.fixture
def eval_data(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "eval.jsonl", EVAL_ROWS)
    return load_train_data(DataSpec(source=str(path)), tiny_tokenizer, max_length=128)


def _train(tiny_model_dir, train_data, out, spec, **kwargs):
    from safepeft.models.loader import load_model

    method_spec = FINETUNE_METHODS.get("lora").make_spec()
    return train(load_model(str(tiny_model_dir)), train_data, spec, method_spec, out, show_progress=False, **kwargs)


def test_eval_loss_every_eval_steps_and_at_the_end_without_changing_training(tiny_model_dir, train_data, eval_data,
                                                                               tiny_tokenizer, tmp_path):
    spec = TrainSpec(max_steps=5, eval_steps=2, batch_size=2, learning_rate=5e-2, schedule="constant")
    result = _train(tiny_model_dir, train_data, tmp_path / "with", spec, eval_data=eval_data)
    plain = _train(tiny_model_dir, train_data, tmp_path / "without", spec)

    evaluated = result.record.extras["eval"]
    assert [e["step"] for e in evaluated["losses"]] == [2, 4, 5]
    assert evaluated["every"] == 2 and evaluated["data"]["rows"] == len(EVAL_ROWS)
    assert evaluated["data"]["format"] == "alpaca"
    assert evaluated["final_loss"] == evaluated["losses"][-1]["loss"]
    # The recorded final value is the loss of the saved weights on the eval set, not a train-set number.
    pad = tiny_tokenizer.pad_token_id or 0
    assert evaluated["final_loss"] == pytest.approx(eval_loss(result.model, eval_data, 2, pad), rel=1e-4)
    assert evaluated["losses"][0]["loss"] != evaluated["losses"][-1]["loss"]  # training moved it
    # Evaluation draws no random numbers and leaves the weights alone: training is bit-identical without it.
    assert result.record.losses == plain.record.losses
    assert "eval" not in plain.record.extras
    on_disk = json.loads((tmp_path / "with" / "safepeft_train.json").read_text())
    assert on_disk["extras"]["eval"]["losses"] == evaluated["losses"]
    assert on_disk["hyperparameters"]["eval_steps"] == 2


def test_eval_loss_is_shown_in_progress(tiny_model_dir, train_data, eval_data, tmp_path, monkeypatch):
    from safepeft import progress

    shown: list[dict] = []

    @contextmanager
    def recording_bar(description, total, show=True):
        yield lambda n=1, **fields: shown.append(fields)

    monkeypatch.setattr(progress, "bar", recording_bar)
    spec = TrainSpec(max_steps=3, eval_steps=2, batch_size=2, learning_rate=1e-2)
    _train(tiny_model_dir, train_data, tmp_path / "out", spec, eval_data=eval_data)
    assert [sorted(f) for f in shown] == [["loss", "lr"], ["eval_loss", "loss", "lr"], ["eval_loss", "loss", "lr"]]
    assert shown[1]["eval_loss"] != shown[2]["eval_loss"]  # refreshed at the final step


def test_eval_settings_key_the_run_only_when_there_is_eval_data(tiny_loaded, train_data, eval_data):
    method_spec = FINETUNE_METHODS.get("lora").make_spec()
    spec = TrainSpec(max_steps=2)
    assert run_key(tiny_loaded, train_data, spec, method_spec) == run_key(
        tiny_loaded, train_data, spec.model_copy(update={"eval_steps": 7, "log_to": "tensorboard"}), method_spec)
    with_eval = run_key(tiny_loaded, train_data, spec, method_spec, eval_data)
    assert with_eval != run_key(tiny_loaded, train_data, spec, method_spec)
    assert with_eval != run_key(tiny_loaded, train_data, spec.model_copy(update={"eval_steps": 7}), method_spec,
                                eval_data)


def test_cli_eval_data(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    from safepeft.cli.main import run

    eval_file = write_jsonl(tmp_path / "eval.jsonl", EVAL_ROWS)
    out = tmp_path / "adapter"
    code = run(["train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--eval-data", str(eval_file),
                "--eval-steps", "1", "--max-steps", "2", "--batch-size", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "eval data: 3 rows, format alpaca" in captured.err
    record = json.loads((out / "safepeft_train.json").read_text())
    losses = record["extras"]["eval"]["losses"]
    assert [e["step"] for e in losses] == [1, 2]
    assert f"eval loss {losses[-1]['loss']:.4f}" in captured.out


def test_cli_bad_eval_rows_stop_before_training(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    from safepeft.cli.main import run

    eval_file = write_jsonl(tmp_path / "eval.jsonl", [*EVAL_ROWS, {"instruction": "no answer"}])
    code = run(["train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--eval-data", str(eval_file),
                "--max-steps", "1", "--out", str(tmp_path / "o")])
    assert code == 2 and "eval.jsonl:4:" in capsys.readouterr().err
    assert not (tmp_path / "o" / "safepeft_train.json").exists()


def test_a_resumed_run_keeps_the_eval_losses_of_its_checkpoint(tiny_model_dir, train_data, eval_data, tmp_path,
                                                                monkeypatch):
    from safepeft.finetune import trainer

    spec = TrainSpec(max_steps=4, eval_steps=1, checkpoint_every=2, batch_size=2, learning_rate=1e-2)
    whole = _train(tiny_model_dir, train_data, tmp_path / "whole", spec, eval_data=eval_data).record

    real_save = trainer.save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_model_dir, train_data, tmp_path / "killed", spec, eval_data=eval_data)
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    resumed = _train(tiny_model_dir, train_data, tmp_path / "killed", spec, eval_data=eval_data, resume=True).record
    assert resumed.resumed_from == [2]
    assert resumed.extras["eval"]["losses"] == whole.extras["eval"]["losses"]
    assert [e["step"] for e in resumed.extras["eval"]["losses"]] == [1, 2, 3, 4]
