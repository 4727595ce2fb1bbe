"""`safepeft repair safelora|splora` from the command line; the output works with `safepeft generate --adapter`."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()


def test_safelora_then_generate_with_the_repaired_adapter(triple, tmp_path):
    out = tmp_path / "safe"
    result = runner.invoke(app, ["repair", "safelora", "--base", str(triple.base), "--aligned", str(triple.aligned),
                                 "--adapter", str(triple.adapter), "--out", str(out), "--mode", "threshold",
                                 "--tau", "0.5"])
    assert result.exit_code == 0, result.output
    assert "projected 3 of 12 modules" in result.stdout
    report = json.loads((out / "safepeft_repair.json").read_text())
    assert {m["name"] for m in report["modules"] if m["action"] == "projected"} == triple.misaligned
    generated = runner.invoke(app, ["generate", "--model", str(triple.aligned), "--adapter", str(out), "--prompt",
                                    "hello", "--max-new-tokens", "3", "--jsonl"])
    assert generated.exit_code == 0, generated.output
    assert json.loads(generated.stdout.splitlines()[-1])["prompt"] == "hello"


def test_splora_json_summary(triple, tmp_path):
    result = runner.invoke(app, ["repair", "splora", "--base", str(triple.base), "--aligned", str(triple.aligned),
                                 "--adapter", str(triple.adapter), "--out", str(tmp_path / "pruned"), "--k", "3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pruned"] == 3 and summary["params_removed"] > 0


def test_bad_option_is_one_line_exit_2(triple, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "safepeft.cli", "repair", "splora", "--base", str(triple.base), "--aligned",
         str(triple.aligned), "--adapter", str(triple.adapter), "--out", str(tmp_path / "x"), "--direction", "up"],
        capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Invalid direction 'up'")
