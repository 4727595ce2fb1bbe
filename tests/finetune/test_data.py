"""Data loading: formats, column options, malformed rows reported with file:line, built-in sets."""

from __future__ import annotations

import json

import pytest
from finetune_helpers import SHORT_ROWS, write_jsonl

from safepeft.errors import DataError
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.rows import DataSpec, read_rows


def test_jsonl_rows_become_messages(chat_jsonl):
    rows, bad = read_rows(DataSpec(source=str(chat_jsonl)))
    assert not bad and len(rows) == len(SHORT_ROWS)
    assert rows[0].messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}]
    assert rows[2].source == f"{chat_jsonl}:3"


def test_bad_jsonl_rows_are_reported_with_line_numbers(tmp_path, tiny_tokenizer):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(SHORT_ROWS[0]).encode(), b'{"prompt": "only a prompt"}', b"{not json",
             json.dumps({"prompt": "x", "response": "   "}).encode(), b'{"prompt": "caf\xe9", "response": "ok"}',
             json.dumps({"body": "wrong columns"}).encode(),
             json.dumps({"messages": [{"role": "user", "content": "no answer"}]}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError) as info:
        load_train_data(DataSpec(source=str(path)), tiny_tokenizer, max_length=128)
    message = info.value.render()
    assert "6 malformed row(s)" in message and "--skip-bad-rows" in message
    for line, reason in [(2, "'response'"), (3, "invalid JSON"), (4, "empty"), (5, "UTF-8"), (6, "missing fields")]:
        assert f"bad.jsonl:{line}: " in message and reason in message
    assert "(and 1 more)" in message


def test_skip_bad_rows_counts_them(tmp_path, tiny_tokenizer):
    rows = [*SHORT_ROWS, {"prompt": "x"}, {"prompt": "long", "response": "y" * 500}]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    data = load_train_data(DataSpec(source=str(path), skip_bad_rows=True), tiny_tokenizer, max_length=128)
    assert len(data.examples) == len(SHORT_ROWS)
    assert [b.source.rsplit(":", 1)[1] for b in data.skipped] == ["5", "6"]
    assert "over-long" in data.skipped[1].reason
    assert data.summary()["skipped_rows"] == 2


def test_csv_reports_physical_line_numbers(tmp_path, tiny_tokenizer):
    path = tmp_path / "rows.csv"
    path.write_bytes(b'question,answer\nhi,hello\n"multi\nline",fine\nempty,\n"caf\xe9",x\n')
    rows, bad = read_rows(DataSpec(source=str(path), prompt_column="question", response_column="answer"))
    assert [r.messages[0]["content"] for r in rows] == ["hi", "multi\nline"]
    assert [r.source.rsplit(":", 1)[1] for r in rows] == ["2", "3"]
    assert [(b.source.rsplit(":", 1)[1], b.reason) for b in bad] == [("5", "empty or missing 'answer'"),
                                                                     ("6", "not valid UTF-8")]


def test_json_array_in_alpaca_format_with_line_numbers(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_text('[\n  {"instruction": "Add", "input": "2 and 3", "output": "5"},\n'
                    '  {"instruction": "Bad", "output": ""}\n]\n', encoding="utf-8")
    rows, bad = read_rows(DataSpec(source=str(path)))
    assert rows[0].messages[0]["content"] == "Add\n\n2 and 3" and rows[0].source == f"{path}:2"
    assert bad[0].source == f"{path}:3" and "'output'" in bad[0].reason


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "response": ["x", None]}), path)
    rows, bad = read_rows(DataSpec(source=str(path)))
    assert len(rows) == 1 and bad[0].source == f"{path}:item 2"


def test_missing_file_and_unknown_builtin(tmp_path):
    from safepeft.errors import UnknownNameError

    with pytest.raises(DataError, match="not found"):
        read_rows(DataSpec(source=str(tmp_path / "nope.jsonl")))
    with pytest.raises(UnknownNameError, match="saftey"):
        read_rows(DataSpec(source="builtin:saftey"))


def test_shared_gsm8k_loads_with_column_options(shared_data, tiny_tokenizer):
    spec = DataSpec(source=str(shared_data / "gsm8k" / "test.jsonl"), prompt_column="question",
                    response_column="answer", limit=20)
    data = load_train_data(spec, tiny_tokenizer, max_length=2048)
    assert len(data.examples) == 20 and data.target_tokens > 0
