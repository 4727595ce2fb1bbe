"""Issue #12: a table of bad inputs, one or more per command. Each row must give the documented exit code, a message
naming the problem, no traceback, and leave nothing behind (the row's work folder is byte-identical afterwards).

Rows run in-process through `safepeft.cli.main.run` (importing torch per subprocess costs seconds); a handful also
run through the real entry point to prove the process exit code.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import generation_rows

from safepeft.cli.main import os_error_message, run


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


CUDA = pytest.mark.skipif(_has_cuda(), reason="CUDA is available here")


class _Evil:
    """A pickle that, if ever unpickled, creates the marker file (it must never be)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _nan_file(path: Path, key_part: str) -> None:
    """Set one element of the first tensor whose name contains key_part to NaN, in place."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    key = next(k for k in sorted(tensors) if key_part in k)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, path, metadata={"format": "pt"})


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Shared bad (and good) inputs, built once for the module."""
    import shutil

    from peft import LoraConfig, get_peft_model

    from safepeft.models.tiny import save_tiny_model, tiny_llama

    root = tmp_path_factory.mktemp("bad-inputs")
    w = {"tiny": tiny_model_dir, "root": root, "marker": root / "PWNED"}

    nan_model = save_tiny_model(root / "nan-model", initializer_range=0.5)
    _nan_file(nan_model / "model.safetensors", "q_proj")
    w["nan_model"] = nan_model

    adapter = root / "adapter"
    get_peft_model(tiny_llama(0, initializer_range=0.5),
                   LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    w["adapter"] = adapter
    nan_adapter = root / "nan-adapter"
    shutil.copytree(adapter, nan_adapter)
    _nan_file(nan_adapter / "adapter_model.safetensors", "lora_A")
    w["nan_adapter"] = nan_adapter

    evil = pickle.dumps(_Evil(w["marker"]))
    pickle_model = root / "pickle-model"
    pickle_model.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "chat_template.jinja", "generation_config.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, pickle_model / name)
    (pickle_model / "pytorch_model.bin").write_bytes(evil)
    w["pickle_model"] = pickle_model
    pickle_adapter = root / "pickle-adapter"
    pickle_adapter.mkdir()
    shutil.copy(adapter / "adapter_config.json", pickle_adapter / "adapter_config.json")
    (pickle_adapter / "adapter_model.bin").write_bytes(evil)
    w["pickle_adapter"] = pickle_adapter

    config_only = root / "config-only"
    config_only.mkdir()
    shutil.copy(tiny_model_dir / "config.json", config_only / "config.json")
    w["config_only"] = config_only

    (root / "broken.jinja").write_text("{% for m in messages %}{{ m.content }")
    w["broken_template"] = root / "broken.jinja"
    (root / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    w["latin1"] = root / "latin1.txt"
    (root / "prompts.txt").write_text("hello\nworld\n")
    w["prompts"] = root / "prompts.txt"
    data = root / "data.jsonl"
    data.write_text(json.dumps({"prompt": "hi", "response": "hello!"}) + "\n")
    w["data"] = data
    (root / "syntax.yaml").write_text("name: s\nmodels:\n  - name: m\n    model: [unclosed\n")
    w["syntax_yaml"] = root / "syntax.yaml"
    empty = root / "empty-dir"
    empty.mkdir()
    w["empty"] = empty
    return w


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under folder with a digest of its bytes (folders map to "dir"). A run-dir lock file in a folder
    that already existed is not output (store/lock.py: taking the lock creates it), so it is left out."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.name == ".lock" and path.parent != folder and (path.parent / "results.json").exists():
            continue
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The row's own folder (also the CWD, so default output dirs land here): a file, another model's audit dir."""
    from safepeft.records import ArtifactRef, AuditResults

    (tmp_path / "a-file").write_text("not a directory\n")
    other = tmp_path / "other-audit"
    other.mkdir()
    AuditResults(model=ArtifactRef(spec="some-other-model")).write(other / "results.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (id, argv template, exit code, message fragments). {name} fills from `world`, {out} is WORK/out (absent),
# {file} is WORK/a-file, {other} is WORK/other-audit (another model's results), {work} is the row's folder.
M = ["--model", "{tiny}"]
J = ["--judge", "refusal"]  # the rule-based judge: no judge model to load
ROWS = [
    # models info
    ("info-pickle-model", ["models", "info", "{pickle_model}"], 2, ["only pickled weights", "safetensors"]),
    ("info-pickle-adapter", ["models", "info", "{tiny}", "--adapter", "{pickle_adapter}"], 2,
     ["only pickled weights", "safetensors"]),
    ("info-nan-model", ["models", "info", "{nan_model}"], 2, ["non-finite"]),
    ("info-nan-adapter", ["models", "info", "{tiny}", "--adapter", "{nan_adapter}"], 2, ["non-finite"]),
    ("info-config-only", ["models", "info", "{config_only}"], 2, ["has no .safetensors weights", "config.json"]),
    ("info-missing-dir", ["models", "info", "{work}/nope/model"], 2, ["not found"]),
    ("info-broken-template", ["models", "info", "{tiny}", "--chat-template", "{broken_template}"], 2,
     ["not valid Jinja"]),
    pytest.param("info-cuda", ["models", "info", "{tiny}", "--device", "cuda"], 2, ["cuda"], marks=CUDA),
    ("info-bad-dtype", ["models", "info", "{tiny}", "--dtype", "float7"], 2, ["float7"]),
    ("info-unknown-option", ["models", "info", "{tiny}", "--bogus"], 2, ["No such option: --bogus"]),
    ("models-unknown-command", ["models", "frobnicate"], 2, ["No such command"]),
    # generate
    ("gen-missing-model", ["generate", "-p", "hi"], 2, ["Missing option", "--model"]),
    ("gen-max-new-tokens-abc", [*("generate", *M), "-p", "hi", "--max-new-tokens", "abc"], 2,
     ["Invalid value for '--max-new-tokens'"]),
    ("gen-batch-size-0", [*("generate", *M), "-p", "hi", "--batch-size", "0"], 2, ["--batch-size"]),
    ("gen-non-utf8-prompts", [*("generate", *M), "--prompts", "{latin1}", "--run-dir", "{out}"], 2, ["not UTF-8"]),
    ("gen-missing-prompts-file", [*("generate", *M), "--prompts", "{work}/missing.txt", "--run-dir", "{out}"], 2,
     ["missing.txt"]),
    ("gen-run-dir-is-file", [*("generate", *M), "-p", "hi", "--run-dir", "{file}"], 2, ["is a file"]),
    ("gen-nan-model", ["generate", "--model", "{nan_model}", "-p", "hi", "--run-dir", "{out}"], 2, ["non-finite"]),
    ("gen-nan-adapter", [*("generate", *M), "--adapter", "{nan_adapter}", "-p", "hi", "--run-dir", "{out}"], 2,
     ["non-finite"]),
    ("gen-pickle-model", ["generate", "--model", "{pickle_model}", "-p", "hi", "--run-dir", "{out}"], 2,
     ["only pickled weights"]),
    ("gen-config-only", ["generate", "--model", "{config_only}", "-p", "hi", "--run-dir", "{out}"], 2,
     ["has no .safetensors weights"]),
    ("gen-broken-template", [*("generate", *M), "--chat-template", "{broken_template}", "-p", "hi", "--run-dir",
                             "{out}"], 2, ["not valid Jinja"]),
    pytest.param("gen-cuda", [*("generate", *M), "-p", "hi", "--device", "cuda", "--run-dir", "{out}"], 2, ["cuda"],
                 marks=CUDA),
    # list, demo
    ("list-unknown-kind", ["list", "gizmos"], 2, ["Unknown registry kind"]),
    ("list-unknown-option", ["list", "--bogus"], 2, ["No such option: --bogus"]),
    ("demo-unknown-option", ["demo", "--bogus"], 2, ["No such option: --bogus"]),
    ("unknown-command", ["frobnicate"], 2, ["No such command"]),
    # audit
    ("audit-limit-0", [*("audit", *M, *J), "--out", "{out}", "--limit", "0"], 2, ["Invalid --limit"]),
    ("audit-missing-out", ["audit", *M], 2, ["Missing option", "--out"]),
    ("audit-unknown-judge", [*("audit", *M), "--out", "{out}", "--judge", "nojudge"], 2, ["nojudge"]),
    ("audit-unknown-suite", [*("audit", *M, *J), "--out", "{out}", "--suite", "nosuite"], 2, ["nosuite"]),
    ("audit-unknown-attack", [*("audit", *M, *J), "--out", "{out}", "--attack", "noattack"], 2, ["noattack"]),
    ("audit-unknown-guard", [*("audit", *M, *J), "--out", "{out}", "--guard", "noguard"], 2, ["noguard"]),
    ("audit-out-is-file", [*("audit", *M, *J), "--out", "{file}", "--limit", "1"], 2, ["is a file"]),
    ("audit-other-models-dir", [*("audit", *M, *J), "--out", "{other}", "--suite", "builtin", "--limit", "1"], 2,
     ["--overwrite"]),
    ("audit-nan-model", ["audit", "--model", "{nan_model}", *J, "--out", "{out}", "--suite", "builtin", "--limit",
                         "1"], 2, ["non-finite"]),
    ("audit-nan-adapter", [*("audit", *M, *J), "--adapter", "{nan_adapter}", "--out", "{out}", "--suite", "builtin",
                           "--limit", "1"], 2, ["non-finite"]),
    ("audit-pickle-adapter", [*("audit", *M, *J), "--adapter", "{pickle_adapter}", "--out", "{out}", "--suite",
                              "builtin", "--limit", "1"], 2, ["only pickled weights"]),
    # judge-eval
    ("judge-eval-missing-labels", ["judge-eval", "--labels", "{work}/missing.csv"], 2, ["--labels"]),
    ("judge-eval-no-labels-option", ["judge-eval"], 2, ["Missing option", "--labels"]),
    ("judge-eval-bad-format", ["judge-eval", "--labels", "{data}", "--format", "pdf"], 2, ["pdf"]),
    # train, align
    ("train-max-steps-0", [*("train", *M), "--data", "{data}", "--out", "{out}", "--max-steps", "0"], 2,
     ["Invalid --max-steps"]),
    ("train-unknown-method", [*("train", *M), "--data", "{data}", "--out", "{out}", "--method", "nomethod"], 2,
     ["nomethod"]),
    ("train-missing-data", [*("train", *M), "--data", "{work}/missing.jsonl", "--out", "{out}", "--max-steps", "1"],
     2, ["missing.jsonl"]),
    ("train-nan-model", ["train", "--model", "{nan_model}", "--data", "{data}", "--out", "{out}", "--max-steps",
                         "1"], 2, ["non-finite"]),
    ("train-pickle-model", ["train", "--model", "{pickle_model}", "--data", "{data}", "--out", "{out}",
                            "--max-steps", "1"], 2, ["only pickled weights"]),
    ("align-steps-0", [*("align", *M), "--out", "{out}", "--steps", "0"], 2, ["Invalid --steps"]),
    ("align-nan-model", ["align", "--model", "{nan_model}", "--out", "{out}", "--steps", "1"], 2, ["non-finite"]),
    # report
    ("report-missing-input", ["report", "{work}/no-such-run"], 2, ["no-such-run"]),
    ("report-bad-format", ["report", "{other}", "--format", "pdf"], 2, ["pdf"]),
    # study
    ("study-yaml-syntax", ["study", "run", "{syntax_yaml}", "--out", "{out}"], 2, ["line"]),
    ("study-missing-file", ["study", "run", "{work}/missing.yaml", "--out", "{out}"], 2, ["missing.yaml"]),
    ("study-status-not-a-run", ["study", "status", "{empty}"], 2, ["is not a study run directory"]),
    ("study-retry-not-a-run", ["study", "retry", "{empty}", "train/x"], 2, ["is not a study run directory"]),
    # repair
    ("safelora-nan-adapter", ["repair", "safelora", "--base", "{tiny}", "--aligned", "{tiny}", "--adapter",
                              "{nan_adapter}", "--out", "{out}"], 2, ["non-finite"]),
    ("splora-nan-adapter", ["repair", "splora", "--base", "{tiny}", "--aligned", "{tiny}", "--adapter",
                            "{nan_adapter}", "--out", "{out}"], 2, ["non-finite"]),
    ("safelora-pickle-adapter", ["repair", "safelora", "--base", "{tiny}", "--aligned", "{tiny}", "--adapter",
                                 "{pickle_adapter}", "--out", "{out}"], 2, ["only pickled weights"]),
    ("splora-nan-aligned", ["repair", "splora", "--base", "{tiny}", "--aligned", "{nan_model}", "--adapter",
                            "{adapter}", "--out", "{out}"], 2, ["non-finite"]),
    ("splora-k-0", ["repair", "splora", "--base", "{tiny}", "--aligned", "{tiny}", "--adapter", "{adapter}",
                    "--out", "{out}", "--k", "0"], 2, ["Invalid value for '--k'"]),
    ("safelora-missing-adapter", ["repair", "safelora", "--base", "{tiny}", "--aligned", "{tiny}", "--out",
                                  "{out}"], 2, ["Missing option", "--adapter"]),
    # quantize
    ("quantize-nan-model", ["quantize", "--model", "{nan_model}", "--scheme", "int8-dynamic", "--out", "{out}"], 2,
     ["non-finite"]),
    ("quantize-pickle-model", ["quantize", "--model", "{pickle_model}", "--scheme", "int8-dynamic", "--out",
                               "{out}"], 2, ["only pickled weights"]),
    ("quantize-unknown-scheme", [*("quantize", *M), "--scheme", "int3-magic", "--out", "{out}"], 2, ["int3-magic"]),
    ("quantize-out-is-file", [*("quantize", *M), "--scheme", "int8-dynamic", "--out", "{file}"], 2, ["a-file"]),
    ("quantize-nan-adapter", [*("quantize", *M), "--adapter", "{nan_adapter}", "--scheme", "int8-dynamic", "--out",
                              "{out}"], 2, ["non-finite"]),
]


def _ids(rows):
    return [r.values[0] if hasattr(r, "values") else r[0] for r in rows]


def _fill(argv: list[str], world: dict[str, Path], work: Path) -> list[str]:
    names = {k: str(v) for k, v in world.items()}
    names.update(out=str(work / "out"), file=str(work / "a-file"), other=str(work / "other-audit"), work=str(work))
    return [arg.format(**names) for arg in argv]


def _check_output(code: int, want_code: int, out: str, err: str, fragments: list[str]) -> None:
    text = out + err
    assert code == want_code, text
    assert "Traceback" not in text and "internal error" not in text, text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize(("name", "argv", "code", "fragments"), ROWS, ids=_ids(ROWS))
def test_bad_input(name, argv, code, fragments, world, work, capsys):
    before = _snapshot(work)
    result = run(_fill(argv, world, work))
    captured = capsys.readouterr()
    _check_output(result, code, captured.out, captured.err, fragments)
    if captured.err.startswith("error: "):
        assert len([line for line in captured.err.splitlines() if line.strip()]) == 1, captured.err
    assert _snapshot(work) == before, "a refused command must leave nothing behind"
    assert not world["marker"].exists(), "a pickle was unpickled"


def test_rows_cover_every_command():
    assert len(ROWS) >= 40
    commands = {(r.values[1] if hasattr(r, "values") else r[1])[0] for r in ROWS}
    firsts = {"models", "generate", "list", "demo", "audit", "judge-eval", "train", "align", "report", "study",
              "repair", "quantize"}
    assert firsts <= commands


# ---- through the real entry point ------------------------------------------------------------------------------

def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAFEPEFT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "safepeft.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, **kwargs)


PROCESS_ROWS = ["info-pickle-model", "quantize-nan-model", "gen-missing-model", "info-unknown-option",
                "audit-limit-0", "audit-unknown-judge"]


@pytest.mark.parametrize("name", PROCESS_ROWS)
def test_bad_input_process_exit_code(name, world, work):
    row = next(r for r in ROWS if not hasattr(r, "values") and r[0] == name)
    before = _snapshot(work)
    result = _cli(*_fill(row[1], world, work), cwd=work)
    _check_output(result.returncode, row[2], result.stdout, result.stderr, row[3])
    assert _snapshot(work) == before
    assert not world["marker"].exists()


def test_study_with_missing_model_fails_its_step(world, work):
    import yaml

    study = {"name": "broken", "models": [{"name": "ghost", "model": str(work / "no-such-model")}],
             "audit": {"suites": ["builtin"], "per_category": 1, "max_new_tokens": 2}}
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    result = _cli("study", "run", path, "--out", work / "run", cwd=work)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "no-such-model" in result.stdout + result.stderr


def test_yaml_syntax_error_is_one_line_with_position(world, work, capsys):
    assert run(["study", "run", str(world["syntax_yaml"]), "--out", str(work / "out")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "line" in lines[0] and "column" in lines[0], lines


# ---- OS errors -------------------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions (CI runs as root)")
def test_read_only_output_dir(world, work, capsys):
    locked = work / "locked"
    locked.mkdir(mode=0o555)
    try:
        code = run(["generate", "--model", str(world["tiny"]), "-p", "hi", "--run-dir", str(locked / "run")])
        err = capsys.readouterr().err
        assert code == 2 and "Permission denied" in err and "Traceback" not in err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_os_error_message_names_path_and_hint():
    message = os_error_message(PermissionError(errno.EACCES, "Permission denied", "/srv/out"))
    assert message.startswith("Cannot access /srv/out: Permission denied.") and "permissions" in message
    assert "read-only" in os_error_message(OSError(errno.EROFS, "Read-only file system", "/mnt"))
    assert "disk is full" in os_error_message(OSError(errno.ENOSPC, "No space left on device"))
    assert "Check the path" in os_error_message(OSError(errno.EIO, "I/O error", "/x"))


def test_permission_error_reaching_main_exits_2(world, work, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(work / "out"))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = run(["quantize", "--model", str(world["tiny"]), "--scheme", "int8-dynamic", "--out", str(work / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Cannot access") and "Permission denied" in lines[0]
    assert "Traceback" not in err and "internal error" not in err


# ---- Ctrl-C ----------------------------------------------------------------------------------------------------

def test_ctrl_c_exits_130_and_resumes(world, work):
    n = 40
    prompts = work / "many.txt"
    prompts.write_text("".join(f"prompt {i} {'y' * (i % 5)}\n" for i in range(n)))
    run_dir = work / "run"
    command = [sys.executable, "-m", "safepeft.cli", "generate", "--model", str(world["tiny"]), "--prompts",
               str(prompts), "--run-dir", str(run_dir), "--batch-size", "1", "--max-new-tokens", "24", "--jsonl"]
    env = {**os.environ, "SAFEPEFT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while generation_rows(run_dir) < 2:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no generation was stored"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["Interrupted: completed work is saved; re-run the same command to continue."], err
    done = generation_rows(run_dir)
    assert 0 < done < n, "the interrupt must land mid-run for this test to mean anything"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert len(resumed.stdout.splitlines()) == n
    assert generation_rows(run_dir) == n
