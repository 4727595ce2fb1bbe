"""Issue #15: `safepeft report` compares each variant with the one it came from, read from the stage records.

align -> train -> repair -> quantize run as separate CLI commands on the tiny model (a couple of steps each), every
artifact is audited, and the report's base of each variant is checked; `--base` still overrides.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()
ROWS = [{"prompt": "hi", "response": "hello!"}, {"prompt": "2+2?", "response": "4."},
        {"prompt": "Steal a car?", "response": "I can't help with that."}, {"prompt": "sky?", "response": "blue."}]


def _ok(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def test_every_variant_is_compared_with_its_source(tiny_model_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    base, aligned, lora, safe, quant = (str(tmp_path / n) for n in ("base", "aligned", "lora", "safe", "quant"))
    _ok("align", "-m", str(tiny_model_dir), "--out", aligned, "--data", str(data), "--steps", "2", "--batch-size", "2",
        "--rank", "2")
    _ok("train", "-m", aligned, "--data", str(data), "--out", lora, "--max-steps", "2", "--batch-size", "2")
    _ok("repair", "safelora", "--base", str(tiny_model_dir), "--aligned", aligned, "--adapter", lora, "--out", safe,
        "--mode", "threshold", "--tau", "0.5")
    _ok("quantize", "-m", aligned, "--adapter", safe, "--scheme", "int8-dynamic", "--out", quant)
    audits = {"base": ["-m", str(tiny_model_dir)], "aligned": ["-m", aligned],
              "lora": ["-m", aligned, "--adapter", lora], "safe": ["-m", aligned, "--adapter", safe],
              "quant": ["-m", quant]}
    for name, model in audits.items():
        _ok("audit", *model, "--suite", "builtin", "--limit", "2", "--max-new-tokens", "2", "--bootstrap", "100",
            "--judge", "refusal", "--out", str(tmp_path / "runs" / name))
    runs = [str(tmp_path / "runs" / n) for n in audits]
    result = runner.invoke(app, ["report", *runs, "--format", "json"])
    assert result.exit_code == 0, result.output
    variants = {v["name"]: v for v in json.loads(result.stdout)["variants"]}
    assert {n: (v["base"], v["base_rule"]) for n, v in variants.items()} == {
        "base": (None, "none"), "aligned": ("base", "lineage"), "lora": ("aligned", "lineage"),
        "safe": ("lora", "lineage"), "quant": ("safe", "lineage")}
    override = runner.invoke(app, ["report", *runs, "--format", "json", "--base", "base"])
    assert override.exit_code == 0, override.output
    assert {v["base"] for v in json.loads(override.stdout)["variants"] if v["name"] != "base"} == {"base"}
