import json

from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()


def test_generate_prints_jsonl_and_stores(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "hello"}) + "\n" + json.dumps(
        {"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]}) + "\n")
    result = runner.invoke(app, ["generate", "--model", str(tiny_model_dir), "--prompts", str(prompts),
                                 "--prompt", "extra", "--max-new-tokens", "5", "--jsonl", "--run-dir",
                                 str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["prompt"] for r in rows][0] == "extra" and len(rows) == 3
    assert (tmp_path / "run" / "store.sqlite").exists()
    assert len((tmp_path / "run" / "generations.jsonl").read_text().splitlines()) == 3


def test_models_info_json(tiny_model_dir):
    result = runner.invoke(app, ["models", "info", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["architecture"] == "LlamaForCausalLM" and info["chat_template"] is True
    assert len(info["fingerprint"]) == 16 and info["dtype"] == "float32"


def test_fingerprint_is_stable_and_content_based(tiny_model_dir, tmp_path):
    from safepeft.models.fingerprint import directory_fingerprint
    from safepeft.models.tiny import save_tiny_model

    assert directory_fingerprint(tiny_model_dir) == directory_fingerprint(tiny_model_dir)
    other = save_tiny_model(tmp_path / "other", seed=1, initializer_range=0.5)
    assert directory_fingerprint(other) != directory_fingerprint(tiny_model_dir)


def test_list_shows_registries():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "hf" in result.stdout
