"""Issue #15 small items: built-in chat templates, path-like specs fail fast, flags render as flags in --help."""

from __future__ import annotations

import pytest

from safepeft.errors import ModelLoadError
from safepeft.models.spec import resolve

CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


@pytest.mark.parametrize("spec", ["./missing", "a/b/c", "weights.safetensors", "model.gguf", "~/nope"])
def test_path_like_specs_fail_without_the_hub(spec):
    with pytest.raises(ModelLoadError, match="not found"):
        resolve(spec)


def test_existing_parent_dir_means_a_path_and_hub_ids_stay_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelLoadError, match="looks like a local path"):
        resolve("models/llama")
    assert resolve("Qwen/Qwen2.5-0.5B").kind == "hub" and resolve("gpt2").kind == "hub"


def test_chatml_and_none_templates(tiny_model_dir):
    from safepeft.finetune.chat import tokenize_conversation
    from safepeft.models.loader import load_model

    chatml = load_model(str(tiny_model_dir), chat_template="chatml", device="cpu").tokenizer
    text = chatml.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    raw = load_model(str(tiny_model_dir), chat_template="none", device="cpu").tokenizer
    assert raw.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True) == "hi"
    example = tokenize_conversation(raw, CHAT)  # prefix-stable, so it trains too
    assert example.input_ids == tuple(raw("hi\n\nyo", add_special_tokens=False)["input_ids"])
    with pytest.raises(Exception, match="chatml, none"):
        load_model(str(tiny_model_dir), chat_template="chatmlx", device="cpu")


def test_boolean_flags_render_without_a_type():
    from typer.testing import CliRunner

    from safepeft.cli.main import app

    lines = CliRunner().invoke(app, ["train", "--help"], terminal_width=160).output.splitlines()
    flag = next(line for line in lines if "--skip-bad-rows" in line)
    valued = next(line for line in lines if "--lr " in line)
    assert "<bool>" not in flag and "<float>" in valued
    root = CliRunner().invoke(app, ["--help"], terminal_width=160).output
    assert "--debug" in root and "<bool>" not in root
