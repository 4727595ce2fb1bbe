"""safepeft never unpickles weights: no unsafe `torch.load` in the source, and no code path opens a `.bin`/`.pt`/`.pth`
file, even when one lies beside the safetensors weights."""

from __future__ import annotations

import ast
import builtins
import io
import os
import pickle
import shutil
from pathlib import Path

import pytest

import safepeft
from safepeft.cli.main import run

SRC = Path(safepeft.__file__).resolve().parent
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "_pickle"}


def _sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, SRC
    return files


def _torch_load_names(tree: ast.AST) -> set[str]:
    """Local names bound to torch.load (`from torch import load as x`) in a module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "load"}
    return names


def _is_torch_load(call: ast.Call, aliases: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in aliases
    if isinstance(func, ast.Attribute) and func.attr == "load":
        value = func.value
        if isinstance(value, ast.Name) and value.id == "torch":
            return True
        return isinstance(value, ast.Attribute) and value.attr == "serialization"
    return False


def _weights_only_true(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def test_no_torch_load_without_weights_only():
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases = _torch_load_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_torch_load(node, aliases) and not _weights_only_true(node):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == [], f"torch.load without weights_only=True: {offenders}"


def test_no_pickle_modules_or_allow_pickle():
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names
                              if a.name.split(".")[0] in PICKLE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                offenders.append(f"{path.name}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Call):
                offenders += [f"{path.name}:{node.lineno} allow_pickle=True" for k in node.keywords
                              if k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value]
    assert offenders == []


def test_the_static_check_catches_an_unsafe_load():
    tree = ast.parse("import torch\nfrom torch import load as L\ntorch.load(p)\nL(p, weights_only=True)\nL(p)\n")
    aliases = _torch_load_names(tree)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_torch_load(n, aliases)]
    assert [_weights_only_true(c) for c in sorted(calls, key=lambda c: c.lineno)] == [False, True, False]


# ---- dynamic: nothing opens a pickle, even one lying beside the safetensors ------------------------------------

class _Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    from peft import LoraConfig, get_peft_model

    from safepeft.models.tiny import tiny_llama

    root = tmp_path_factory.mktemp("no-pickles")
    marker = root / "PWNED"
    evil = pickle.dumps(_Evil(marker))
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    for name in ("pytorch_model.bin", "training_args.bin", "optimizer.pt", "rng_state.pth"):
        (model / name).write_bytes(evil)
    adapter = root / "adapter"
    get_peft_model(tiny_llama(0, initializer_range=0.5),
                   LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    (adapter / "adapter_model.bin").write_bytes(evil)
    return {"model": model, "adapter": adapter, "marker": marker, "root": root}


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every pickle-suffixed path that open/io.open/os.open/torch.load is asked for while the test runs."""
    import torch

    seen: list[str] = []

    def note(target) -> None:
        if isinstance(target, (str, bytes, os.PathLike)):
            name = os.fsdecode(target) if not isinstance(target, str) else target
            if name.lower().endswith(PICKLE_SUFFIXES):
                seen.append(name)

    real_open, real_os_open, real_torch_load = builtins.open, os.open, torch.load

    def spy_open(file, *args, **kwargs):
        note(file)
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        note(path)
        return real_os_open(path, *args, **kwargs)

    def spy_torch_load(f, *args, **kwargs):
        seen.append(f"torch.load({f!r})")
        return real_torch_load(f, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(torch, "load", spy_torch_load)
    return seen


@pytest.mark.parametrize("argv", [
    ["models", "info", "{model}"],
    ["models", "info", "{model}", "--adapter", "{adapter}", "--json"],
    ["generate", "--model", "{model}", "--adapter", "{adapter}", "-p", "hi", "--max-new-tokens", "2"],
    ["generate", "--model", "{model}", "-p", "hi", "--max-new-tokens", "2", "--run-dir", "{root}/gen"],
    ["quantize", "--model", "{model}", "--scheme", "int8-dynamic", "--out", "{root}/quant", "--overwrite"],
], ids=["info", "info-adapter", "generate-adapter", "generate-run-dir", "quantize"])
def test_commands_never_open_a_pickle(argv, dirs, opened, capsys):
    code = run([a.format(**{k: str(v) for k, v in dirs.items()}) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert opened == [], f"pickle files were opened: {opened}"
    assert not dirs["marker"].exists()


def test_peft_adapter_load_never_opens_a_pickle(dirs, opened):
    from safepeft.models.loader import load_model

    loaded = load_model(str(dirs["model"]), adapter=str(dirs["adapter"]))
    assert loaded.adapter_fingerprint
    assert opened == [], f"pickle files were opened: {opened}"
    assert not dirs["marker"].exists()


def test_repair_readers_never_open_a_pickle(dirs, opened):
    from safepeft.models.weights import open_weights
    from safepeft.repair.adapter import load_lora_adapter

    adapter = load_lora_adapter(dirs["adapter"])
    assert adapter.modules
    reader = open_weights(str(dirs["model"]))
    assert reader.get(reader.keys()[0]).numel() > 0
    assert opened == [], f"pickle files were opened: {opened}"
    assert not dirs["marker"].exists()


def test_the_spy_sees_a_pickle_open(dirs, opened):
    with open(dirs["model"] / "pytorch_model.bin", "rb") as handle:  # noqa: PTH123 - through the patched open
        handle.read(1)
    assert opened and opened[0].endswith("pytorch_model.bin")
