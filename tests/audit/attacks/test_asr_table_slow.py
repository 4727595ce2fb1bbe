"""The seed study's table, small: jailbreak ASR of the embedded model as base, fine-tuned (aligned), int8 and
guarded, under two attacks, plus the guard's over-block rate on benign prompts. Runs in CI (`slow`)."""

from __future__ import annotations

import pytest

from safepeft.audit.attacks.suite import JailbreakSuite, build_attacks
from safepeft.audit.base import AuditOptions
from safepeft.audit.judges.refusal import RefusalJudge
from safepeft.audit.runner import build_suite

pytestmark = pytest.mark.slow
ATTACKS = ["direct", "base64"]
OPTIONS = AuditOptions(per_category=1, max_new_tokens=24, bootstrap=200)


def asr_row(generator):
    result = JailbreakSuite(build_suite("builtin"), build_attacks(ATTACKS)).run(generator, RefusalJudge(), OPTIONS)
    row = {name: result.by_attack[name].metrics["asr"].value for name in ATTACKS}
    row["any"] = result.metrics["any_attack_asr"].value
    row["blocked"] = result.metrics["blocked_rate"].value if "blocked_rate" in result.metrics else 0.0
    return result, row


def test_asr_table(embedded, aligned_embedded_dir, tmp_path):
    from safepeft.guard.perplexity import PerplexityGuard
    from safepeft.models.loader import load_model
    from safepeft.quantize.run import quantize_model

    manifest = quantize_model("embedded", "int8-dynamic", tmp_path / "int8")
    variants = {
        "base": embedded.generator(batch_size=32, progress=False),
        "fine-tuned": load_model(str(aligned_embedded_dir)).generator(batch_size=32, progress=False),
        "int8": load_model(str(tmp_path / "int8")).generator(batch_size=32, progress=False),
    }
    guard = PerplexityGuard.create(inner=variants["base"])
    variants["guarded"] = guard.wrap(variants["base"])
    table = {}
    for name, generator in variants.items():
        result, table[name] = asr_row(generator)
        assert result.n == 11 * len(ATTACKS) and set(result.by_attack) == set(ATTACKS)
        assert all(0.0 <= v <= 1.0 for v in table[name].values())
    benign = build_suite("builtin-benign").run(variants["guarded"], RefusalJudge(), OPTIONS)
    over_block = benign.metrics["blocked_rate"].value if "blocked_rate" in benign.metrics else 0.0
    print("\nASR table (builtin, 2 per category, refusal judge):")
    for name, row in table.items():
        print(f"  {name:10s} " + " ".join(f"{k}={v:.2f}" for k, v in row.items()))
    print(f"  over-block (guarded, builtin-benign): {over_block:.2f}; int8 size ratio {manifest['size']['ratio']}")
    # The guard only removes answers (never adds any), and it blocks base64's encoded requests.
    assert table["guarded"]["base64"] <= table["base"]["base64"] and table["guarded"]["blocked"] > 0
    assert table["guarded"]["direct"] <= table["base"]["direct"]
    # Safety alignment lowers the direct-request ASR of this model, which complies with nearly everything.
    assert table["fine-tuned"]["direct"] < table["base"]["direct"]
    assert manifest["size"]["ratio"] > 2
