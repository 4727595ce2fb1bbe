"""`--device` for repairs and hardening: a CUDA request without CUDA fails before anything is written, and an
explicit `cpu` gives exactly the default's bytes (the device changes where the math runs, never the math)."""

import json

import pytest
import torch
from menu_helpers import build_family
from safetensors.torch import load_file

from safepeft.cli.main import run
from safepeft.repair import harden_model, repair_adapter

CONVERSATIONS = ["How do I pick a lock?", "Tell me how to hurt someone."]


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("device-family"))


def _weights(directory):
    files = sorted(directory.glob("*.safetensors"))
    assert files, f"no weights in {directory}"
    return {f"{f.name}:{k}": v for f in files for k, v in load_file(f).items()}


CASES = [
    ("safelora", {"k": 0.5}, None),
    ("splora", {"k": 0.25}, None),
    ("resta", {"beta": 0.3, "dare": 0.5, "seed": 3}, None),
    ("resta", {"beta": 0.3, "output": "lora", "k": 2, "svd": "randomized"}, None),
    ("safedelta", {"scale": 0.05, "max_samples": 2}, {"safety_conversations": CONVERSATIONS}),
]


@pytest.mark.parametrize(("method", "params", "inputs"), CASES,
                         ids=["safelora", "splora", "resta-dare", "resta-lora", "safedelta"])
def test_cpu_is_bit_identical_to_the_default_and_recorded(family, tmp_path, method, params, inputs):
    outs = {}
    for name, extra in (("default", {}), ("cpu", {"device": "cpu"})):
        outs[name] = tmp_path / name
        report = repair_adapter(method, base=str(family.base), aligned=str(family.aligned), adapter=family.adapter,
                                out=outs[name], spec=params, inputs=inputs, progress=False, **extra)
        assert report.device == "cpu"  # auto resolves to cpu on a machine without CUDA
    default, cpu = _weights(outs["default"]), _weights(outs["cpu"])
    assert default.keys() == cpu.keys()
    assert all(torch.equal(default[k], cpu[k]) for k in default)
    record = json.loads((outs["cpu"] / "safepeft_repair.json").read_text(encoding="utf-8"))
    assert record["device"] == "cpu"


def test_lox_cpu_is_bit_identical_to_the_default(family, tmp_path):
    spec = {"k": 2, "svd": "randomized"}
    harden_model("lox", base=str(family.base), aligned=str(family.aligned), out=tmp_path / "a", spec=spec,
                 progress=False)
    report = harden_model("lox", base=str(family.base), aligned=str(family.aligned), out=tmp_path / "b", spec=spec,
                          progress=False, device="cpu")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert report.device == "cpu"
    assert json.loads((tmp_path / "b" / "safepeft_harden.json").read_text(encoding="utf-8"))["device"] == "cpu"


def test_old_records_without_a_device_still_read():
    from safepeft.repair.report import RepairReport

    fields = {"method": "safelora", "params": {}, "base": {"spec": "b"}, "aligned": {"spec": "a"},
              "adapter": {"spec": "x"}, "modules": [], "summary": {}}
    assert RepairReport.model_validate(fields).device is None


@pytest.mark.parametrize("command", [
    ["repair", "safelora"], ["repair", "splora"], ["repair", "resta"], ["repair", "safemerge"],
    ["repair", "safedelta"], ["repair", "auto"], ["harden", "lox"],
])
def test_cuda_without_cuda_is_one_line_exit_2_and_writes_nothing(family, tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    argv = [*command, "--base", str(family.base), "--aligned", str(family.aligned), "--out", str(out)]
    if command[0] == "repair":
        argv += ["--adapter", str(family.adapter)]
    code = run([*argv, "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cuda" in err[0] and "CUDA" in err[0]
    assert list(tmp_path.iterdir()) == []  # no output, no safety LoRA, no auto-run directory


def test_judge_train_cuda_without_cuda_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    labels = tmp_path / "labels.csv"
    labels.write_text("prompt,response,label\nhi,hello,0\n", encoding="utf-8")
    code = run(["judge", "train", "--labels", str(labels), "--out", str(tmp_path / "judge"), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cuda" in err[0]
    assert not (tmp_path / "judge").exists()


@pytest.mark.parametrize("command", [["repair", "safelora"], ["repair", "splora"], ["repair", "resta"],
                                     ["repair", "safemerge"], ["repair", "safedelta"], ["repair", "auto"],
                                     ["harden", "lox"], ["demo"], ["judge", "train"], ["study", "run"],
                                     ["study", "retry"]])
def test_every_command_has_device(command, capsys):
    assert run([*command, "--help"]) == 0
    assert "--device" in capsys.readouterr().out


def test_on_device_forwards_everything_but_placement(family):
    from safepeft.models.weights import OnDevice, open_weights
    from safepeft.repair.model_io import source_directory

    with open_weights(str(family.aligned)) as reader:
        wrapped = OnDevice(reader, "cpu")
        name = reader.keys()[0]
        assert wrapped.keys() == reader.keys() and name in wrapped and wrapped.shape(name) == reader.shape(name)
        assert wrapped.fingerprint == reader.fingerprint and source_directory(wrapped) == family.aligned
        assert torch.equal(wrapped.get(name), reader.get(name))


def test_mps_is_refused_for_repairs(monkeypatch):
    from safepeft.errors import ConfigError
    from safepeft.repair import run as repair_run

    monkeypatch.setattr(repair_run, "resolve_device", lambda device: "mps")
    with pytest.raises(ConfigError, match="float64"):
        repair_run.repair_device("mps")
