"""Issue #15: adapter_config.json names the base the user gave (an absolute path here), not a cache folder."""

from __future__ import annotations

import json

import pytest
from finetune_helpers import SHORT_ROWS, write_jsonl


def test_adapter_records_the_real_base(tiny_model_dir, tmp_path, monkeypatch):
    from safepeft.cli.main import main

    data = write_jsonl(tmp_path / "d.jsonl", SHORT_ROWS)
    monkeypatch.chdir(tiny_model_dir.parent)
    with pytest.raises(SystemExit) as info:
        main(["train", "-m", f"./{tiny_model_dir.name}", "--data", str(data), "--out", str(tmp_path / "a"),
              "--max-steps", "1", "--batch-size", "4"])
    assert info.value.code == 0
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
