"""SafeLoRA/SPLoRA check that the adapter was trained on --aligned (issue #15): warn, or refuse with --strict.

The adapters here are trained by `safepeft.finetune.trainer.train`, so their safepeft_train.json is the real one.
"""

from __future__ import annotations

import json
import shutil
import warnings
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.errors import IncompatibleArtifactError
from safepeft.models.fingerprint import directory_fingerprint
from safepeft.repair import repair_adapter
from safepeft.repair.run import RepairWarning

ROWS = [{"prompt": "hi", "response": "hello!"}, {"prompt": "2+2?", "response": "4."},
        {"prompt": "sky?", "response": "blue."}, {"prompt": "name?", "response": "Tiny."}]
SPECS = {"safelora": {"mode": "number", "k": 3}, "splora": {"mode": "number", "k": 3}}


def _train_on(model_dir, out, tmp_path):
    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec, train
    from safepeft.models.loader import load_model

    data_file = tmp_path / "rows.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    loaded = load_model(str(model_dir))
    data = load_train_data(DataSpec(source=str(data_file)), loaded.tokenizer, 128)
    lora = FINETUNE_METHODS.get("lora").make_spec(target_modules=["q_proj", "k_proj", "v_proj"], rank=2)
    train(loaded, data, TrainSpec(max_steps=2, batch_size=2, learning_rate=1e-2), lora, out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def family(triple, tmp_path_factory):
    """The shared base/aligned pair, its PEFT-saved adapter, and LoRA adapters trained by safepeft on each model."""
    from safepeft.models.tiny import tiny_tokenizer

    root = tmp_path_factory.mktemp("provenance")
    # The base has no tokenizer to train with; a copy with one has the same fingerprint (weights + config only).
    base_copy = root / "base"
    shutil.copytree(triple.base, base_copy)
    tiny_tokenizer().save_pretrained(base_copy)
    assert directory_fingerprint(base_copy) == directory_fingerprint(triple.base)
    return SimpleNamespace(base=triple.base, aligned=triple.aligned, adapter=triple.adapter,
                           on_aligned=_train_on(triple.aligned, root / "on-aligned", root),
                           on_base=_train_on(base_copy, root / "on-base", root))


def _repair(family, method, adapter, out, **spec):
    return repair_adapter(method, base=str(family.base), aligned=str(family.aligned), adapter=adapter, out=out,
                          spec=SPECS[method] | spec, progress=False)


@pytest.mark.parametrize("method", ["safelora", "splora"])
def test_adapter_trained_on_aligned_passes_silently_and_is_recorded(family, method, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _repair(family, method, family.on_aligned, tmp_path / "out", strict=True)
    assert [str(w.message) for w in caught if issubclass(w.category, RepairWarning)] == []
    trained_on = report.provenance["adapter_trained_on"]
    assert trained_on == {"spec": str(family.aligned), "fingerprint": directory_fingerprint(family.aligned),
                          "matches_aligned": True}
    written = json.loads((tmp_path / "out" / "safepeft_repair.json").read_text())
    assert written["provenance"]["adapter_trained_on"]["matches_aligned"] is True


@pytest.mark.parametrize("method", ["safelora", "splora"])
def test_adapter_trained_on_another_model_warns_and_strict_refuses(family, method, tmp_path):
    with pytest.warns(RepairWarning, match=r"was trained on .* \(the --base model\)") as caught:
        report = _repair(family, method, family.on_base, tmp_path / "out")
    message = next(str(w.message) for w in caught if "was trained on" in str(w.message))
    assert directory_fingerprint(family.base) in message and directory_fingerprint(family.aligned) in message
    assert "--strict makes this an error" in message
    assert report.provenance["adapter_trained_on"]["matches_aligned"] is False
    with pytest.raises(IncompatibleArtifactError, match="not on --aligned") as refused:
        _repair(family, method, family.on_base, tmp_path / "strict", strict=True)
    assert "drop --strict to repair anyway" in refused.value.render()
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("method", ["safelora", "splora"])
def test_adapter_without_a_train_record_cannot_be_checked(family, method, tmp_path):
    assert not (family.adapter / "safepeft_train.json").exists()  # saved by PEFT directly
    with pytest.warns(RepairWarning, match="provenance cannot be checked"):
        report = _repair(family, method, family.adapter, tmp_path / "out")
    assert report.provenance["adapter_trained_on"]["matches_aligned"] is None
    with pytest.raises(IncompatibleArtifactError, match="no readable safepeft_train.json"):
        _repair(family, method, family.adapter, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()


def test_the_record_travels_with_a_repaired_adapter(family, tmp_path):
    """A repair of a repair is still checked: the train record is copied into the repaired adapter."""
    _repair(family, "safelora", family.on_aligned, tmp_path / "once")
    report = _repair(family, "splora", tmp_path / "once", tmp_path / "twice", strict=True)
    assert report.provenance["adapter_trained_on"]["matches_aligned"] is True


def test_cli_warns_on_stderr_and_strict_is_one_line_exit_2(family, tmp_path):
    runner = CliRunner()
    args = ["repair", "splora", "--base", str(family.base), "--aligned", str(family.aligned), "--adapter",
            str(family.on_base), "--k", "3"]
    warned = runner.invoke(app, [*args, "--out", str(tmp_path / "warned")])
    assert warned.exit_code == 0, warned.output
    assert "warning: The adapter" in warned.stderr and "(the --base model)" in warned.stderr
    assert "pruned 3 of 12 modules" in warned.stdout

    refused = runner.invoke(app, [*args, "--out", str(tmp_path / "refused"), "--strict"])
    assert refused.exit_code != 0 and not (tmp_path / "refused").exists()
    assert isinstance(refused.exception, IncompatibleArtifactError)


def test_cli_strict_error_through_the_entry_point(family, tmp_path, capsys):
    from safepeft.cli.main import run

    code = run(["repair", "safelora", "--base", str(family.base), "--aligned", str(family.aligned), "--adapter",
                str(family.adapter), "--out", str(tmp_path / "x"), "--k", "3", "--strict"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: The adapter ")
    assert "provenance cannot be checked" in err[0] and not (tmp_path / "x").exists()
