"""SPLoRA's `k` (issue #15): a count or a share of the adapter's modules, a relative default, a warning past half.

The shared triple has 12 modules, 3 of them built misaligned (conftest.build_triple).
"""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app, run
from safepeft.errors import ConfigError
from safepeft.repair import repair_adapter
from safepeft.repair.run import RepairWarning
from safepeft.repair.splora import SPLoRASpec, module_count


def _splora(triple, out, **spec):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = repair_adapter("splora", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                                out=out, spec=spec, progress=False)
    pruning = [str(w.message) for w in caught if issubclass(w.category, RepairWarning) and "prune" in str(w.message)]
    return report, pruning


def _pruned(report):
    return {m.name for m in report.modules if m.action == "pruned"}


def test_default_k_is_a_quarter_of_the_modules(triple, tmp_path):
    assert SPLoRASpec().k == 0.25
    report, pruning = _splora(triple, tmp_path / "out")
    assert report.summary["k_modules"] == 3 and _pruned(report) == triple.misaligned
    assert pruning == []


def test_share_is_rounded_half_up_and_at_least_one_module():
    assert [module_count(0.25, n) for n in (12, 14, 2, 1)] == [3, 4, 1, 1]
    assert module_count(0.5, 7) == 4 and module_count(0.01, 12) == 1
    assert module_count(5, 12) == 5  # a count is used as given


def test_explicit_count_works_as_before(triple, tmp_path):
    report, _ = _splora(triple, tmp_path / "out", mode="number", k=3)
    assert _pruned(report) == triple.misaligned and report.params["k"] == 3


def test_pruning_more_than_half_warns_but_half_does_not(triple, tmp_path):
    half, quiet = _splora(triple, tmp_path / "half", k=0.5)
    assert len(_pruned(half)) == 6 and quiet == []
    most, warned = _splora(triple, tmp_path / "most", k=7)
    assert len(_pruned(most)) == 7
    assert warned == ["SPLoRA will prune 7 of the adapter's 12 modules (more than half), removing most of the "
                      "fine-tuning. Lower --k (a share such as --k 0.25 scales with the adapter) or change --tau if "
                      "that is not intended."]
    assert (tmp_path / "most" / "adapter_model.safetensors").is_file()  # a warning, not a refusal


def test_threshold_mode_warns_too(triple, tmp_path):
    # `near` prunes low scores: the 9 aligned modules score about 0, the 3 misaligned about 4.
    report, warned = _splora(triple, tmp_path / "out", mode="threshold", tau=0.5, direction="near")
    assert _pruned(report) == set(triple.modules) - triple.misaligned
    assert warned and warned[0].startswith("SPLoRA will prune 9 of the adapter's 12 modules")
    assert "k_modules" not in report.summary


def test_k_above_the_module_count_is_refused_and_nothing_is_written(triple, tmp_path):
    with pytest.raises(ConfigError) as caught:
        _splora(triple, tmp_path / "out", k=13)
    text = caught.value.render()
    assert text.startswith("--k 13 is more than the 12 modules of the adapter ") and "\n" not in text
    assert "Pass --k 11 or less, or a share such as --k 0.25." in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [0, 1.0, 1.5, -0.25])
def test_k_that_is_neither_a_count_nor_a_share_is_invalid(bad):
    with pytest.raises(ValueError, match="k must be a count"):
        SPLoRASpec(k=bad)


def test_cli_k_accepts_a_count_or_a_share(triple, tmp_path):
    runner = CliRunner()
    args = ["repair", "splora", "--base", str(triple.base), "--aligned", str(triple.aligned), "--adapter",
            str(triple.adapter), "--json"]
    for k, pruned in (("0.25", 3), ("2", 2), (None, 3)):
        out = tmp_path / f"k-{k}"
        result = runner.invoke(app, [*args, "--out", str(out), *(["--k", k] if k else [])])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["pruned"] == pruned
    params = json.loads((tmp_path / "k-2" / "safepeft_repair.json").read_text())["params"]
    assert params["k"] == 2 and isinstance(params["k"], int)


def test_cli_prints_the_warning_and_one_line_errors(triple, tmp_path, capsys):
    args = ["repair", "splora", "--base", str(triple.base), "--aligned", str(triple.aligned), "--adapter",
            str(triple.adapter)]
    assert run([*args, "--out", str(tmp_path / "most"), "--k", "0.75"]) == 0
    assert "warning: SPLoRA will prune 9 of the adapter's 12 modules" in capsys.readouterr().err
    assert run([*args, "--out", str(tmp_path / "big"), "--k", "20"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert err == [f"error: --k 20 is more than the 12 modules of the adapter {triple.adapter}; nothing was "
                   "written. Pass --k 11 or less, or a share such as --k 0.25."]
    assert not (tmp_path / "big").exists()
    assert run([*args, "--out", str(tmp_path / "bad"), "--k", "1.5"]) == 2
    assert "Invalid value for '--k': expected a count of modules" in capsys.readouterr().err
