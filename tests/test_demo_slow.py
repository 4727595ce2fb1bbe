"""`safepeft demo --quick`: the whole loop on the embedded model writes a report; re-running recomputes nothing."""

import json

import pytest
from report_html import check_study_report
from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.study.builtin import builtin_study

pytestmark = pytest.mark.slow


def check_efficacy_invariants(run_dir):
    """The protocol's invariants on a real run: the contaminated data holds only align's requests (never an audited
    prompt), every figure pairs the same test items across aligned, fine-tuned and repaired, and recovery is
    recomputed from those items exactly."""
    from safepeft.efficacy import outcomes, recovery
    from safepeft.finetune.contaminate import harmful_requests
    from safepeft.records import load_results
    from safepeft.records.efficacy import EfficacyResults

    efficacy = EfficacyResults.model_validate_json((run_dir / "efficacy.json").read_text())
    manifest = {v["name"]: v["results"] for v in json.loads((run_dir / "variants.json").read_text())["variants"]}
    audited_prompts = set()
    for row in efficacy.rows:
        (drift,) = [d for d in efficacy.drifts if d.finetune == row.finetune]
        results = {name: load_results(run_dir / manifest[name]) for name in (drift.aligned, row.finetune, row.variant)}
        ids = [{s.id for s in r.suites["builtin"].samples} for r in results.values()]
        assert ids[0] == ids[1] == ids[2] and all(r.suites["builtin"].params["split"] == "test"
                                                  for r in results.values())
        audited_prompts |= {s.prompt for s in results[row.variant].suites["builtin"].samples}
        again, n, _ = recovery(*(outcomes(r) for r in results.values()), resamples=0)
        assert n == len(ids[0]) == drift.n_harmful
        assert again.value == row.recovery.value
    train_file = next(run_dir.glob("steps/contaminate/*/train.jsonl"))
    asked = {json.loads(line)["messages"][0]["content"] for line in train_file.read_text().splitlines()
             if json.loads(line)["kind"] == "harmful"}
    assert asked and asked <= set(harmful_requests()) and not asked & audited_prompts


def test_demo_quick_runs_the_whole_loop_and_resumes(tmp_path):
    out = tmp_path / "demo"
    first = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    print(first.output)
    assert first.exit_code == 0, first.output
    variants = check_study_report(out, builtin_study("demo-quick"), efficacy=True)
    parts = {part for name in variants for part in name.split("/")[-1].split("+")}
    assert {"lora-contaminated", "salora-contaminated", "safelora", "splora", "resta", "int8-dynamic",
            "perplexity"} <= parts, parts
    check_efficacy_invariants(out)
    assert "Repair efficacy" in first.output and "recovery" in first.output

    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code == 0 and "0 step(s) ran" in again.output
