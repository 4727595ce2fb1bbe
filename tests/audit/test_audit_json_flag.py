"""Issue #15: the trailing {"results": PATH} line of `safepeft audit` only with --json; small n is warned about."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from safepeft.cli.main import app


def test_results_line_only_with_json(tiny_model_dir, tmp_path):
    args = ["audit", "--model", str(tiny_model_dir), "--suite", "builtin", "--limit", "2", "--max-new-tokens", "2",
            "--bootstrap", "100", "--judge", "refusal", "--out", str(tmp_path / "run")]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    assert '"results"' not in plain.stdout
    assert "warning: builtin has n=" in plain.stderr and "under 20 items" in plain.stderr  # small-sample rule
    with_json = CliRunner().invoke(app, [*args, "--json"])
    assert with_json.exit_code == 0, with_json.output
    assert json.loads(with_json.stdout.strip().splitlines()[-1]) == {"results": str(tmp_path / "run" / "results.json")}
