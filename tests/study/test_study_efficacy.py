"""The efficacy protocol end to end on the tiny model: contaminated fine-tune, repair candidates chosen on the
validation split, test audits, efficacy.json and the report's efficacy page."""

from __future__ import annotations

import json

from safepeft.study import run_study
from safepeft.study.spec import parse_study


def tiny_efficacy_study(model_dir):
    return parse_study({
        "name": "tiny-efficacy",
        "models": [{"name": "tiny", "model": str(model_dir),
                    "align": {"params": {"max_steps": 1, "batch_size": 2, "max_length": 2048}}}],
        "finetune": [{"name": "contaminated", "method": "lora", "data": "builtin:arithmetic",
                      "contaminate": {"share": 0.25, "rows": 6, "max_new_tokens": 8, "judge": "refusal"},
                      "params": {"max_steps": 1, "batch_size": 2, "max_length": 512, "rank": 2}}],
        "repairs": [{"method": "safelora", "params": {"mode": "number"}, "grid": {"k": [1, 2]}},
                    {"method": "splora", "params": {"mode": "number"}, "grid": {"k": [1]}}],
        "efficacy": {"validation_share": 0.5, "validation_limit": 4},
        # The rule-based judge: the default `classifier` reads the embedded model, too slow for unit tests.
        "audit": {"suites": ["builtin", "builtin-benign", "arithmetic:12"], "limit": 12, "max_new_tokens": 4,
                  "judge": "refusal", "bootstrap": 100},
    })


def test_efficacy_protocol_on_the_tiny_model(tiny_model_dir, tmp_path):
    from safepeft.records.efficacy import Choice, EfficacyResults
    from safepeft.report.load import load_variants
    from safepeft.target import shared_models

    shared_models().pool.release()
    run = tmp_path / "run"
    summary = run_study(tiny_efficacy_study(tiny_model_dir), run)
    assert not summary.failed, summary.failed
    kinds = {s.split("/")[0] for s in summary.ran}
    assert {"contaminate", "train", "repair", "validate", "select", "audit"} <= kinds

    variants = {v.name: v for v in load_variants([run])}
    # candidates are not variants: only the chosen repair per method, and auto
    assert set(variants) == {"tiny", "tiny+aligned", "tiny/contaminated", "tiny/contaminated+safelora",
                             "tiny/contaminated+splora", "tiny/contaminated+auto"}
    reported = {s.id for s in variants["tiny/contaminated"].results.suites["builtin"].samples}
    validated = set()
    for path in run.glob("steps/audit/*/results.json"):
        data = json.loads(path.read_text())
        suite = data["suites"]["builtin"]
        if suite["params"].get("split") == "validation":
            validated |= {s["id"] for s in suite["samples"]}
    assert reported and validated and not reported & validated  # chosen on items never reported

    efficacy = EfficacyResults.model_validate_json((run / "efficacy.json").read_text())
    assert {r.repair for r in efficacy.rows} == {"safelora", "splora", "auto"}
    # the refusal judge measures refusal: the figures are compliance rates ("did not refuse"), and say so
    assert efficacy.safety_rate == "compliance_rate"
    assert {c.safety_rate for c in efficacy.choices if len(c.candidates) > 1} == {"compliance_rate"}
    (drift,) = efficacy.drifts
    assert drift.finetune == "tiny/contaminated" and drift.n_harmful == len(reported)
    for row in efficacy.rows:
        assert row.harmful_rate.value is not None and row.seconds is not None and row.output == "adapter"
    by_repair = {r.repair: r for r in efficacy.rows}
    assert by_repair["safelora"].extra_params == 0  # projects factors in place
    assert by_repair["splora"].extra_params <= 0  # prunes whole modules
    choices = {c.repair: c for c in efficacy.choices}
    assert [c.label for c in choices["safelora"].candidates] == ["safelora[k=1]", "safelora[k=2]"]
    assert len(choices["auto"].candidates) == 3
    assert isinstance(choices["auto"], Choice) and choices["auto"].chosen in {
        c.label for c in choices["auto"].candidates}
    link = run / "variants" / "tiny__contaminated+auto"
    assert link.is_symlink() and (link / "results.json").is_file()  # human-readable names beside the hash folders
    assert json.loads((link / "results.json").read_text())["suites"]["builtin"]["params"]["split"] == "test"
    html = (run / "report.html").read_text()
    assert 'id="efficacy"' in html and "tiny/contaminated+auto" in html and "Δ compliance" in html

    train_file = next(run.glob("steps/contaminate/*/train.jsonl"))
    rows = [json.loads(line) for line in train_file.read_text().splitlines()]
    assert sum(r["kind"] == "harmful" for r in rows) == 2 and len(rows) == 8  # 25% of 8 rows
    assert (train_file.parent / "NOTICE.txt").is_file()
