"""Issue #15, the gaps a check of every item left: a hub dataset id and JSONL with named columns through `train`,
a CSV of your own prompts with categories through `audit`, progress lines without a terminal from `align` and from
a study's steps (with the study's step count), honest small-sample intervals and the small-n flag through `report`,
quantize's JSON line only with --json, the real base of a hub model, and booleans as flags in every command's help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app, main

ROWS = [{"prompt": "hi", "completion": "hello!"}, {"prompt": "sky?", "completion": "blue."}]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _annotation(param):
    descriptor = getattr(param, "type_descriptor", None)  # typer's record of the parameter's Python annotation
    return getattr(descriptor, "annotation", None)


def test_every_command_shows_booleans_as_flags():
    import typer

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        booleans = [p for p in getattr(command, "params", []) if _annotation(p) in (bool, bool | None)]
        assert all(p.is_flag for p in booleans), (path, [p.opts for p in booleans if not p.is_flag])
        text = CliRunner().invoke(app, [*path, "--help"], terminal_width=200).output
        assert "Usage" in text and "<bool>" not in text and "BOOLEAN" not in text, path
        checked += bool(booleans)
    assert checked >= 10  # train, align, audit, repair ... all have on/off options


def test_train_reads_a_hub_dataset_id(tiny_model_dir, tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip("datasets")
    asked = []

    def load_dataset(name, split):  # offline stand-in for the hub: the real reader gets what the hub would give
        asked.append((name, split))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    out = tmp_path / "a"
    with pytest.raises(SystemExit) as info:
        main(["train", "-m", str(tiny_model_dir), "--data", "someone/chat-set", "--out", str(out), "--max-steps",
              "1", "--batch-size", "2"])
    assert info.value.code == 0, capsys.readouterr().err
    assert asked == [("someone/chat-set", "train")]
    assert "data: 2 rows, format prompt-completion" in capsys.readouterr().err
    record = json.loads((out / "safepeft_train.json").read_text())
    assert record["data"]["source"] == "someone/chat-set" and record["data"]["format"] == "prompt-completion"


def test_train_reads_jsonl_with_named_columns(tiny_model_dir, tmp_path, capsys):
    data = _write_jsonl(tmp_path / "qa.jsonl", [{"q": r["prompt"], "a": r["completion"]} for r in ROWS])
    with pytest.raises(SystemExit) as info:
        main(["train", "-m", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "a"), "--max-steps",
              "1", "--batch-size", "2", "--prompt-column", "q", "--response-column", "a"])
    assert info.value.code == 0
    assert "data: 2 rows, format prompt-response" in capsys.readouterr().err


def test_prompts_csv_categories_land_on_the_taxonomy(tiny_model_dir, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,prompt,category\na,first question,hate\nb,second question,S9\nc,third question,Privacy\n"
                    "d,fourth question,my own label\n", encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--suite", f"prompts:{path}",
                                      "--kind", "harmful", "--judge", "refusal", "--max-new-tokens", "2",
                                      "--bootstrap", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    suite = json.loads((out / "results.json").read_text())["suites"]["prompts"]
    counts = {name: c["n"] for name, c in suite["by_category"].items() if c["n"]}
    assert counts == {"S9_hate": 2, "S6_privacy": 1, "other": 1} and suite["n"] == 4
    assert suite["params"]["file"] == str(path)


def _progress_env():
    env = {k: v for k, v in os.environ.items() if k != "SAFEPEFT_NO_PROGRESS"}
    return {**env, "SAFEPEFT_PROGRESS_EVERY": "0", "OMP_NUM_THREADS": "1"}


def test_align_without_a_terminal_logs_step_count_rate_and_eta(tiny_model_dir, tmp_path):
    data = _write_jsonl(tmp_path / "rows.jsonl", ROWS)
    done = subprocess.run(
        [sys.executable, "-m", "safepeft.cli", "align", "-m", str(tiny_model_dir), "--out", str(tmp_path / "al"),
         "--data", str(data), "--steps", "2", "--batch-size", "2", "--rank", "2"],
        capture_output=True, text=True, env=_progress_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("[progress] train lora: ")]
    assert lines and lines[0].startswith("[progress] train lora: 1/2 in ") and "/s, eta " in lines[0]
    assert "[done] train lora: 2/2" in done.stderr


def test_study_steps_log_progress_naming_the_step_and_the_step_count(tiny_model_dir, tmp_path, monkeypatch):
    import yaml

    for name, value in _progress_env().items():
        if name.startswith(("SAFEPEFT_", "OMP_")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("SAFEPEFT_NO_PROGRESS", raising=False)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "tiny-progress",
        "models": [{"name": "tiny", "model": str(tiny_model_dir)}],
        "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic",
                      "params": {"max_steps": 2, "batch_size": 2, "limit": 4, "max_length": 512, "rank": 2}}],
        "audit": {"suites": ["builtin"], "per_category": 1, "max_new_tokens": 2, "judge": "refusal"},
    }), encoding="utf-8")
    result = CliRunner().invoke(app, ["study", "run", str(study), "--out", str(tmp_path / "run")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    finished = [line for line in result.stdout.splitlines() if line.startswith("✓ ")]
    assert [line.rsplit(" ", 1)[-1] for line in finished] == ["[1/3]", "[2/3]", "[3/3]"], finished
    train_step = next(line.split()[1] for line in finished if line.split()[1].startswith("train/"))
    assert f"[progress] train lora [{train_step}]: 1/2 in " in result.stderr and "eta" in result.stderr
    assert f"[done] train lora [{train_step}]: 2/2" in result.stderr


def test_an_adapter_of_a_hub_model_names_the_hub_id():
    from safepeft.finetune.trainer import base_name

    assert base_name(SimpleNamespace(kind="hub", spec="Qwen/Qwen2.5-0.5B")) == "Qwen/Qwen2.5-0.5B"
    assert base_name(SimpleNamespace(kind="embedded", spec="embedded")) == "embedded"


def test_report_flags_a_change_measured_on_too_few_items(tiny_model_dir, tmp_path):
    from safepeft.intervals import SMALL_SAMPLE_RULE

    runs = [str(tmp_path / name) for name in ("first", "second")]
    for run in runs:  # the same model twice: nothing changed, on 4 items
        result = CliRunner().invoke(app, ["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--limit",
                                          "4", "--max-new-tokens", "2", "--bootstrap", "100", "--judge", "refusal",
                                          "--out", run])
        assert result.exit_code == 0, result.output
    report = CliRunner().invoke(app, ["report", *runs, "--base", "first", "--format", "md"])
    assert report.exit_code == 0, report.output
    assert f"small n: {SMALL_SAMPLE_RULE}" in report.stdout
    data = json.loads(CliRunner().invoke(app, ["report", *runs, "--base", "first", "--format", "json"]).stdout)
    cell = next(row for row in data["summary"] if row["variant"] == "second")["cells"]["builtin/compliance_rate"]
    low, high = cell["ci95"]
    assert high - low > 0.3 and cell["n"] == 4  # a rate on 4 items is not certain, whatever it is
    low, high = cell["delta_ci95"]
    assert cell["delta"] == 0.0 and low < -0.1 and high > 0.1  # nothing changed, yet no [0, 0]
    assert cell["small_sample"] and not cell["significant"]


def test_quantize_prints_its_json_line_only_with_json(tiny_model_dir, tmp_path):
    args = ["quantize", "-m", str(tiny_model_dir), "--scheme", "int8-dynamic"]
    plain = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert "int8-dynamic:" in plain.stdout and "{" not in plain.stdout
    scripted = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--json"])
    assert scripted.exit_code == 0, scripted.output
    line = json.loads(scripted.stdout.strip().splitlines()[-1])
    assert line["out"] == str(tmp_path / "b") and line["scheme"] == "int8-dynamic" and line["bits"] == 8
