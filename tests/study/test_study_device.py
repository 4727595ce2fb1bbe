"""`study run --device`: the device reaches every step's context (and the audit's `target.device`) without being a
step parameter, so the same study on another device has the same step keys and reuses what it finished."""

import json

import pytest
from study_helpers import calls, doubles_study

from safepeft.registry import Registry
from safepeft.study import run_study
from safepeft.study.dag import expand
from safepeft.study.doubles import FakeArtifact, FakeAudit
from safepeft.study.kinds import StepContext
from safepeft.study.spec import parse_study
from safepeft.study.steps.audit import target_options

SEEN = "device_seen.jsonl"


def _note(ctx: StepContext) -> None:
    # an audit's target as the real audit step reads it
    target = target_options(ctx) if ctx.step.kind == "audit" else ctx.params.get("target")
    with open(ctx.run_dir / SEEN, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": ctx.step.name, "key": ctx.step.key, "device": ctx.device,
                                 "load_device": ctx.load_device, "target": target}) + "\n")


class NotingArtifact(FakeArtifact):
    def run(self, ctx):
        _note(ctx)
        return super().run(ctx)


class NotingAudit(FakeAudit):
    def run(self, ctx):
        _note(ctx)
        return super().run(ctx)


KINDS = Registry("step kind")
for _name in ("align", "train", "repair", "quantize"):
    KINDS.register(_name, NotingArtifact())
KINDS.register("audit", NotingAudit())
REF = "test_study_device:KINDS"


def _seen(run_dir):
    return [json.loads(line) for line in (run_dir / SEEN).read_text(encoding="utf-8").splitlines()]


def test_device_reaches_every_step_and_keys_are_the_plain_studys(tmp_path):
    spec = parse_study(doubles_study())
    keys = {name: step.key for name, step in expand(spec).steps.items()}
    run_dir = tmp_path / "run"
    summary = run_study(spec, run_dir, kinds=REF, device="cuda:1")
    assert not summary.failed
    seen = _seen(run_dir)
    assert {row["step"]: row["key"] for row in seen} == keys  # every step ran, under the plain study's key
    assert all(row["device"] == "cuda:1" and row["load_device"] == "cuda:1" for row in seen)
    audits = [row for row in seen if row["step"].startswith("audit/")]
    assert audits and all(row["target"] == {"device": "cuda:1"} for row in audits)
    assert all(row["target"] is None for row in seen if not row["step"].startswith("audit/"))
    plan = json.loads((run_dir / "study.json").read_text(encoding="utf-8"))
    assert "cuda:1" not in json.dumps(plan)  # the override is not part of the recorded plan

    ran_before = len(calls(run_dir))
    again = run_study(spec, run_dir, kinds=REF)  # the same study without the override reuses every step
    assert again.ran == [] and sorted(again.reused) == sorted(keys) and len(calls(run_dir)) == ran_before


def test_without_a_device_steps_keep_their_own(tmp_path):
    spec = parse_study(doubles_study(target={"device": "cpu"}))
    run_study(spec, tmp_path / "run", kinds=REF)
    seen = _seen(tmp_path / "run")
    assert all(row["device"] is None and row["load_device"] == "auto" for row in seen)
    assert all(row["target"] == {"device": "cpu"} for row in seen if row["step"].startswith("audit/"))


def test_override_replaces_the_studys_target_device_only(tmp_path):
    spec = parse_study(doubles_study(target={"device": "cpu", "dtype": "float32"}))
    run_study(spec, tmp_path / "run", kinds=REF, device="cuda")
    audits = [row for row in _seen(tmp_path / "run") if row["step"].startswith("audit/")]
    assert audits and all(row["target"] == {"device": "cuda", "dtype": "float32"} for row in audits)


@pytest.mark.parametrize("command", [["demo"], ["study", "run", "--builtin", "demo-quick"]])
def test_cuda_without_cuda_is_one_line_exit_2_and_writes_nothing(command, tmp_path, capsys, monkeypatch):
    import torch

    from safepeft.cli.main import run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = run([*command, "--out", str(tmp_path / "run"), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cuda" in err[0]
    assert list(tmp_path.iterdir()) == []
