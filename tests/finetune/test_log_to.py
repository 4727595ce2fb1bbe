"""`train --log-to tensorboard|wandb` (issue #15): the libraries' own APIs, optional, wandb offline and keyless."""

from __future__ import annotations

import sys
import types

import pytest
from finetune_helpers import write_jsonl

from safepeft.errors import MissingDependencyError
from safepeft.finetune import FINETUNE_METHODS
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.trainer import TrainSpec, metric_logger, train

EVAL_ROWS = [{"prompt": "colour of grass?", "response": "green."}, {"prompt": "3+3?", "response": "6."}]


def _train(tiny_model_dir, train_data, eval_data, out, **spec):
    from safepeft.models.loader import load_model

    return train(load_model(str(tiny_model_dir)), train_data, TrainSpec(batch_size=2, learning_rate=1e-2, **spec),
                 FINETUNE_METHODS.get("lora").make_spec(), out, show_progress=False, eval_data=eval_data)


@pytest.fixture
def eval_data(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "eval.jsonl", EVAL_ROWS)
    return load_train_data(DataSpec(source=str(path)), tiny_tokenizer, max_length=128)


@pytest.mark.parametrize(("kind", "module"), [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_missing_library_names_the_extra(kind, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError) as caught:
        metric_logger(kind)
    message = caught.value.render()
    assert f"--log-to {kind} needs the Python package '{kind}'" in message
    assert f"pip install 'safepeft[{kind}]'" in message


def test_cli_missing_library_is_one_line_before_any_work(tiny_model_dir, chat_jsonl, tmp_path, monkeypatch, capsys):
    from safepeft.cli.main import run

    monkeypatch.setitem(sys.modules, "wandb", None)
    out = tmp_path / "adapter"
    code = run(["train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--out", str(out), "--log-to",
                "wandb", "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.strip()] == [
        "error: --log-to wandb needs the Python package 'wandb', which is not installed. Install it with: pip "
        "install 'safepeft[wandb]'"]
    assert not out.exists()


def test_cli_rejects_an_unknown_backend(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    from safepeft.cli.main import run

    code = run(["train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--out", str(tmp_path / "o"),
                "--log-to", "mlflow"])
    assert code == 2 and "Invalid --log-to: Input should be 'tensorboard' or 'wandb'" in capsys.readouterr().err


class FakeWandb(types.ModuleType):
    """Records what the trainer hands to wandb's public API (init, run.log, run.finish)."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.inits: list[dict] = []
        self.logged: list[tuple[int, dict]] = []
        self.finished = 0

    def init(self, **kwargs):
        self.inits.append(kwargs)
        fake = self

        class Run:
            def log(self, metrics, step=None):
                fake.logged.append((step, dict(metrics)))

            def finish(self):
                fake.finished += 1

        return Run()


def test_wandb_run_is_offline_keyless_and_gets_every_metric(tiny_model_dir, train_data, eval_data, tmp_path,
                                                              monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-that-must-not-travel")
    _train(tiny_model_dir, train_data, eval_data, tmp_path / "run", max_steps=3, eval_steps=2, log_to="wandb")

    [init] = fake.inits
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path / "run") and init["name"] == "run"
    assert "secret-key" not in repr(init) and not {"key", "api_key", "settings"} & set(init)
    assert [step for step, _ in fake.logged] == [1, 2, 3]
    assert all({"train/loss", "train/learning_rate"} <= set(metrics) for _, metrics in fake.logged)
    assert ["eval/loss" in metrics for _, metrics in fake.logged] == [False, True, True]
    assert fake.finished == 1

    monkeypatch.setenv("WANDB_MODE", "online")  # the user's choice is left to wandb, which reads the variable
    _train(tiny_model_dir, train_data, None, tmp_path / "run2", max_steps=1, log_to="wandb")
    assert fake.inits[-1]["mode"] is None


def test_wandb_run_is_finished_when_training_fails(tiny_model_dir, train_data, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("safepeft.finetune.trainer.summed_loss", broken)
    with pytest.raises(RuntimeError, match="boom"):
        _train(tiny_model_dir, train_data, None, tmp_path / "run", max_steps=2, log_to="wandb")
    assert fake.finished == 1


def test_tensorboard_event_files_hold_the_scalars(tiny_model_dir, train_data, eval_data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    _train(tiny_model_dir, train_data, eval_data, out, max_steps=3, eval_steps=2, log_to="tensorboard")
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/learning_rate", "eval/loss"} <= set(scalars)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert [e.step for e in events.Scalars("eval/loss")] == [2, 3]
    assert (out / "safepeft_train.json").is_file()


def test_logs_left_by_a_run_killed_before_its_first_checkpoint_do_not_block_a_restart(tiny_model_dir, train_data,
                                                                                         tmp_path):
    out = tmp_path / "run"
    (out / "tensorboard").mkdir(parents=True)
    (out / "tensorboard" / "events.out.tfevents.1").write_bytes(b"")
    _train(tiny_model_dir, train_data, None, out, max_steps=1)
    assert (out / "safepeft_train.json").is_file() and (out / "tensorboard").is_dir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not ours")
    with pytest.raises(Exception, match="not empty and was not written by safepeft train"):
        _train(tiny_model_dir, train_data, None, tmp_path / "other", max_steps=1)
