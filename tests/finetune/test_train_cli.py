"""`safepeft train` / `safepeft align` / `safepeft list methods` end to end on the tiny model."""

from __future__ import annotations

import json

from finetune_helpers import SHORT_ROWS, write_jsonl
from typer.testing import CliRunner

from safepeft.cli.main import app


def _invoke(*args: str) -> int:
    """Exit code of `safepeft ARGS` run through the real entry point (0 when it returns normally)."""
    from safepeft.cli.main import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_train_writes_a_peft_adapter(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    out = tmp_path / "adapter"
    code = _invoke("train", "--model", str(tiny_model_dir), "--method", "ia3", "--data", str(chat_jsonl), "--out",
                   str(out), "--max-steps", "2", "--batch-size", "2")
    assert code == 0
    assert "Saved ia3 adapter" in capsys.readouterr().out
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "IA3"
    record = json.loads((out / "safepeft_train.json").read_text())
    assert record["method"] == "ia3" and record["steps"] == 2


def test_method_flags_reach_the_spec_and_wrong_ones_are_rejected(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    out = tmp_path / "lora"
    assert _invoke("train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--out", str(out), "--rank", "3",
                   "--target-modules", "q_proj,k_proj", "--max-steps", "1") == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 3 and sorted(config["target_modules"]) == ["k_proj", "q_proj"]
    capsys.readouterr()
    code = _invoke("train", "-m", str(tiny_model_dir), "--method", "ia3", "--data", str(chat_jsonl), "--out",
                   str(tmp_path / "x"), "--rank", "3")
    assert code == 2 and "Invalid options for method 'ia3' (rank" in capsys.readouterr().err


def test_bad_rows_stop_the_run_with_line_numbers(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [*SHORT_ROWS, {"prompt": "no answer"}])
    code = _invoke("train", "-m", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "o"))
    assert code == 2 and "d.jsonl:5:" in capsys.readouterr().err
    code = _invoke("train", "-m", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "o"),
                   "--skip-bad-rows", "--max-steps", "1")
    assert code == 0 and "Skipped 1 malformed row(s); first: " in capsys.readouterr().err


def test_unknown_method_suggests_names(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    code = _invoke("train", "-m", str(tiny_model_dir), "--method", "lorra", "--data", str(chat_jsonl), "--out",
                   str(tmp_path / "o"))
    assert code == 2 and "Did you mean 'lora'" in capsys.readouterr().err


def test_list_methods_and_datasets():
    result = CliRunner().invoke(app, ["list", "methods"])
    assert result.exit_code == 0
    for name in ("lora", "ia3", "prompt-tuning", "p-tuning"):
        assert name in result.output
    result = CliRunner().invoke(app, ["list", "datasets"])
    assert result.exit_code == 0 and "arithmetic" in result.output and "identity-shift" in result.output
