"""`safepeft demo --quick`: the whole loop on the embedded model writes a report; re-running recomputes nothing."""

import json

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app

pytestmark = pytest.mark.slow


def test_demo_quick_runs_the_whole_loop_and_resumes(tmp_path):
    out = tmp_path / "demo"
    first = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    print(first.output)
    assert first.exit_code == 0, first.output
    report = (out / "report.html").read_text(encoding="utf-8")
    for section in ("Summary", "Pareto"):
        assert section.lower() in report.lower()
    variants = json.loads((out / "variants.json").read_text())
    names = " ".join(v["name"] if isinstance(v, dict) else str(v) for v in
                     (variants if isinstance(variants, list) else variants.get("variants", [])))
    for part in ("lora-arithmetic", "salora-arithmetic", "safelora", "splora", "int8-dynamic", "perplexity"):
        assert part in names, f"demo variant {part} missing from {names}"

    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code == 0 and "0 step(s) ran" in again.output
