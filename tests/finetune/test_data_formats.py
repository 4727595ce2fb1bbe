"""Row formats (issue #15): detection, conversion, the one-line description and one error when nothing matches."""

from __future__ import annotations

import pytest
from finetune_helpers import write_jsonl

from safepeft.errors import DataError
from safepeft.finetune.base import IGNORE_INDEX
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.rows import DataSpec, read_rows

HI = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}]


def _load(path, tokenizer, **options):
    return load_train_data(DataSpec(source=str(path), **options), tokenizer, max_length=128)


@pytest.mark.parametrize("row, name", [
    ({"prompt": "hi", "completion": "hello!"}, "prompt-completion"),
    ({"prompt": [HI[0]], "completion": [HI[1]]}, "prompt-completion"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello!"}]}, "sharegpt"),
    ({"messages": HI}, "messages"),
    ({"instruction": "hi", "input": "", "output": "hello!"}, "alpaca"),
    ({"prompt": "hi", "response": "hello!"}, "prompt-response"),
])
def test_each_format_becomes_the_same_conversation(tmp_path, tiny_tokenizer, row, name):
    data = _load(write_jsonl(tmp_path / "d.jsonl", [row, row]), tiny_tokenizer)
    assert [r.messages for r in data.rows] == [HI, HI]
    assert data.format == name and data.describe() == f"data: 2 rows, format {name}"
    assert data.summary()["format"] == name


def test_sharegpt_system_turn_and_bad_role(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "hi"},
                               {"from": "gpt", "value": "yo"}]},
            {"conversations": [{"from": "robot", "value": "hi"}]}]
    good, bad = read_rows(DataSpec(source=str(write_jsonl(tmp_path / "s.jsonl", rows))))
    assert [m["role"] for m in good[0].messages] == ["system", "user", "assistant"]
    assert "'from'" in bad[0].reason and bad[0].source.endswith(":2")


def test_text_rows_train_on_every_token(tmp_path, tiny_tokenizer):
    data = _load(write_jsonl(tmp_path / "t.jsonl", [{"text": "the sky is blue"}, {"text": "grass is green"}]),
                 tiny_tokenizer)
    assert data.format == "text" and data.rows[0].messages == []
    example = data.examples[0]
    assert IGNORE_INDEX not in example.labels and example.labels == example.input_ids
    assert data.target_tokens == sum(len(e.input_ids) for e in data.examples)
    other = _load(write_jsonl(tmp_path / "u.jsonl", [{"text": "grass is green"}]), tiny_tokenizer)
    assert other.data_hash != data.data_hash


def test_csv_with_any_columns_and_one_error_when_undetected(tmp_path, tiny_tokenizer):
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\nhi,hello!\n2+2?,4.\n3+3?,6.\n", encoding="utf-8")
    data = _load(path, tiny_tokenizer, prompt_column="question", response_column="answer")
    assert data.format == "prompt-response" and len(data.rows) == 3
    with pytest.raises(DataError) as info:
        _load(path, tiny_tokenizer)
    message = info.value.render()
    assert "columns seen: answer, question" in message and "--prompt-column" in message
    assert "malformed" not in message and message.count("qa.csv") == 1


def test_mixed_file_names_both_formats(tmp_path, tiny_tokenizer):
    rows = [{"messages": HI}, {"prompt": "hi", "response": "hello!"}]
    assert _load(write_jsonl(tmp_path / "m.jsonl", rows), tiny_tokenizer).format == "messages+prompt-response"


def test_save_to_disk_folder(tmp_path, tiny_tokenizer):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    datasets.Dataset.from_list([{"prompt": "hi", "completion": "hello!"}] * 3).save_to_disk(str(folder))
    data = _load(folder, tiny_tokenizer)
    assert len(data.rows) == 3 and data.rows[0].messages == HI and data.rows[0].source == f"{folder}[train]:row 1"
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a b"}])}).save_to_disk(str(splits))
    assert _load(splits, tiny_tokenizer).format == "text"
    with pytest.raises(DataError, match="no split 'test'"):
        _load(splits, tiny_tokenizer, split="test")


def test_train_cli_prints_the_format_and_fails_once_on_unknown_columns(tiny_model_dir, tmp_path, capsys):
    from safepeft.cli.main import main

    rows = [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello!"}]}] * 2
    data = write_jsonl(tmp_path / "sg.jsonl", rows)
    with pytest.raises(SystemExit) as info:
        main(["train", "-m", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "a"), "--max-steps",
              "1", "--batch-size", "2"])
    assert info.value.code == 0
    assert "data: 2 rows, format sharegpt" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"q": "hi", "a": "x"}] * 3)
    with pytest.raises(SystemExit) as info:
        main(["train", "-m", str(tiny_model_dir), "--data", str(bad), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "columns seen: a, q" in err and "malformed" not in err


def test_align_cli_takes_column_options_and_prints_the_format(tiny_model_dir, tmp_path, capsys):
    from safepeft.cli.main import main

    path = tmp_path / "refusals.csv"
    path.write_text("q,a\nSteal a car?,I can't help.\nhi,hello!\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["align", "-m", str(tiny_model_dir), "--out", str(tmp_path / "al"), "--data", str(path), "--steps", "1",
              "--batch-size", "2", "--rank", "2", "--prompt-column", "q", "--response-column", "a"])
    assert info.value.code == 0
    assert "data: 2 rows, format prompt-response" in capsys.readouterr().err
