"""`generate`, `models info` and `list` against values computed without the CLI: a reference greedy decoder, the
saved config and the registries themselves."""

import json
import shutil

from greedy import greedy_text
from typer.testing import CliRunner

from safepeft.cli.list_cmd import REGISTRIES, load_registry
from safepeft.cli.main import app
from safepeft.errors import UnknownNameError
from safepeft.registry import describe

runner = CliRunner()


def test_generate_prints_jsonl_and_stores(tiny_model_dir, tmp_path):
    from safepeft.models.loader import load_model

    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "hello"}) + "\n" + json.dumps({"prompt": chat}) + "\n")
    result = runner.invoke(app, ["generate", "--model", str(tiny_model_dir), "--prompts", str(prompts),
                                 "--prompt", "extra", "--max-new-tokens", "5", "--jsonl", "--run-dir",
                                 str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["prompt"] for r in rows] == ["extra", "hello", chat]  # --prompt first, then the file in order
    reference = load_model(str(tiny_model_dir))
    expected = [greedy_text(reference.model, reference.tokenizer, r["prompt"], 5) for r in rows]
    assert [r["output"] for r in rows] == expected
    assert len(set(expected)) > 1, "the tiny model should answer different prompts differently"
    assert (tmp_path / "run" / "store.sqlite").exists()
    stored = [json.loads(line) for line in (tmp_path / "run" / "generations.jsonl").read_text().splitlines()]
    assert stored == rows


def test_generate_max_new_tokens_bounds_the_output(tiny_model_dir, tmp_path):
    from safepeft.models.loader import load_model

    reference = load_model(str(tiny_model_dir))
    outputs = {}
    for tokens in (1, 6):
        result = runner.invoke(app, ["generate", "--model", str(tiny_model_dir), "--prompt", "hello",
                                     "--max-new-tokens", str(tokens), "--jsonl"])
        assert result.exit_code == 0, result.output
        outputs[tokens] = json.loads(result.stdout.splitlines()[-1])["output"]
        assert outputs[tokens] == greedy_text(reference.model, reference.tokenizer, "hello", tokens)
    assert outputs[6] != outputs[1]  # (byte-level tokens: one token may be half a character, so no prefix test)


def test_models_info_json(tiny_model_dir):
    from safepeft.models.loader import load_model

    result = runner.invoke(app, ["models", "info", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert info["architecture"] == config["architectures"][0] == "LlamaForCausalLM"
    assert info["chat_template"] is True and info["dtype"] == "float32"
    assert info["fingerprint"] == load_model(str(tiny_model_dir)).fingerprint


def test_fingerprint_follows_content_not_path(tiny_model_dir, tmp_path):
    from safepeft.models.fingerprint import directory_fingerprint
    from safepeft.models.tiny import save_tiny_model

    original = directory_fingerprint(tiny_model_dir)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert directory_fingerprint(copy) == original  # same files elsewhere: same model
    (copy / "NOTES.txt").write_text("not a weight or config file")
    assert directory_fingerprint(copy) == original
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor's data
    weights.write_bytes(bytes(data))
    assert directory_fingerprint(copy) != original
    other = save_tiny_model(tmp_path / "other", seed=1, initializer_range=0.5)
    assert directory_fingerprint(other) != original


def _tables(text: str) -> dict[str, dict[str, str]]:
    """Rich tables printed by `safepeft list`: title -> {name: description} (wrapped cells joined)."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and stripped[0] not in "┏┃┡│└" and " " not in stripped:
            current = tables.setdefault(stripped, {})
        elif stripped.startswith("│") and current is not None:
            name, description = (cell.strip() for cell in stripped.strip("│").split("│"))
            if name:
                current[name], last = description, name
            else:
                current[last] = f"{current[last]} {description}".strip()
    return tables


def test_list_shows_every_registry_entry_with_its_description():
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    tables = _tables(result.stdout)
    assert set(tables) == {f"{kind}s" for kind in REGISTRIES}
    for kind in REGISTRIES:
        registry = load_registry(kind)
        assert list(tables[f"{kind}s"]) == registry.names(), kind
        for name, obj in registry.items():
            assert tables[f"{kind}s"][name] == " ".join(describe(obj).split()), (kind, name)


def test_list_one_kind_and_an_unknown_kind():
    result = runner.invoke(app, ["list", "backends"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert _tables(result.stdout) == {"backends": {n: describe(o) for n, o in load_registry("backend").items()}}
    unknown = runner.invoke(app, ["list", "gizmos"])  # the app itself: main() turns this into exit code 2
    assert isinstance(unknown.exception, UnknownNameError)
    assert "Unknown registry kind 'gizmos'" in str(unknown.exception)
