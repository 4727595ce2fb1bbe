"""Study test helpers: YAML writers, the double step kinds, the tiny-model study."""

from __future__ import annotations

from pathlib import Path

import yaml

from safepeft.study.spec import parse_study

DOUBLES = "safepeft.study.doubles:DOUBLE_KINDS"


def doubles_study(**overrides) -> dict:
    """A study of one model, its aligned reference, a 2-point LoRA grid, SafeLoRA, int8 and a guard (all doubles)."""
    study = {
        "name": "doubles",
        "models": [{"name": "m", "model": "embedded", "align": {}}],
        "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic",
                      "params": {"max_steps": 5}, "grid": {"rank": [4, 8]}}],
        "repairs": ["none", "safelora"],
        "quantize": ["int8-dynamic"],
        "guards": ["refusal-classifier"],
        "audit": {"suites": ["builtin"]},
    }
    study.update(overrides)
    return study


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def calls(run_dir: Path) -> list[str]:
    """Step names in the order the double kinds started them."""
    log = run_dir / "calls.log"
    return [line.split("\t")[0] for line in log.read_text().splitlines()] if log.exists() else []


def tiny_study(model_dir):
    """Two LoRA variants of the tiny model, audited with the real stages."""
    return parse_study({
        "name": "tiny",
        "models": [{"name": "tiny", "model": str(model_dir)}],
        "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic",
                      "params": {"max_steps": 1, "batch_size": 2, "limit": 4, "max_length": 512},
                      "grid": {"rank": [2, 4]}}],
        # The rule-based judge: the default `classifier` reads the embedded model, too slow for unit tests.
        "audit": {"suites": ["builtin"], "per_category": 1, "max_new_tokens": 4, "judge": "refusal"},
    })


def check_tiny_run(run_dir):
    from safepeft.report.load import load_variants

    variants = {v.name: v for v in load_variants([run_dir])}
    assert set(variants) == {"tiny", "tiny/lora[rank=2]", "tiny/lora[rank=4]"}
    for name in ("tiny/lora[rank=2]", "tiny/lora[rank=4]"):
        results = variants[name].results
        assert variants[name].base == "tiny" and results.adapter.fingerprint
        assert len(results.suites["builtin"].by_category) == 11
    fingerprints = {v.results.adapter.fingerprint for v in variants.values() if v.results.adapter}
    assert len(fingerprints) == 2
    assert (run_dir / "report.html").is_file()


def tiny_loop_study(model_dir):
    """The whole loop on the tiny model: align, LoRA, SafeLoRA, int8-dynamic, audits (real stages, tiny budgets)."""
    return parse_study({
        "name": "tiny-loop",
        "models": [{"name": "tiny", "model": str(model_dir),
                    "align": {"params": {"max_steps": 1, "batch_size": 2, "max_length": 2048}}}],
        "finetune": [{"name": "lora", "method": "lora", "data": "builtin:arithmetic",
                      "params": {"max_steps": 1, "batch_size": 2, "limit": 4, "max_length": 512, "rank": 2}}],
        "repairs": [{"method": "safelora", "params": {"mode": "number", "k": 1}}],
        "quantize": ["int8-dynamic"],
        # The rule-based judge: the default `classifier` reads the embedded model, too slow for unit tests.
        "audit": {"suites": ["builtin"], "per_category": 1, "max_new_tokens": 4, "judge": "refusal"},
    })
