"""The import rules of the architecture (docs/architecture.md), checked on the source with the ast module.

L0 errors/registry/records/store/progress · L1 models/classifiers · L2 stage folders · L3 study · L4 cli.
Stage folders never import each other; records/ and report/ never import torch.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "safepeft"
LAYER = {"errors": 0, "registry": 0, "records": 0, "store": 0, "progress": 0, "tasks": 0, "intervals": 0,
         "efficacy": 0, "models": 1, "classifiers": 1,
         "finetune": 2, "audit": 2, "repair": 2, "quantize": 2, "guard": 2, "report": 2, "study": 3, "target": 3,
         "cli": 4}
NO_TORCH = {"records", "report", "registry", "errors", "store", "progress", "tasks", "intervals", "efficacy"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        top = rel.parts[0].removesuffix(".py")
        if top in LAYER:
            yield top, path


@pytest.mark.parametrize("top,path", list(_modules()), ids=lambda v: str(v).split("safepeft/")[-1])
def test_module_respects_layers(top, path):
    for name in _imports(path):
        if name in ("torch",) or name.startswith("torch."):
            assert top not in NO_TORCH, f"{path} imports torch but {top}/ must not"
        if not name.startswith("safepeft."):
            continue
        target = name.split(".")[1]
        if target not in LAYER or target == top:
            continue
        where = f"{path.relative_to(SRC)} (layer {LAYER[top]}) imports safepeft.{target} (layer {LAYER[target]})"
        assert LAYER[target] <= LAYER[top], f"upward import: {where}"
        assert not (LAYER[top] == LAYER[target] == 2), f"stage folders never import each other: {where}"


def test_the_cli_starts_without_torch():
    """`safepeft --help` and every command's flags (generated from specs at start-up) read no torch: a second per
    command, and a broken torch install would break even `--help`."""
    import subprocess
    import sys

    code = ("import sys, safepeft.cli.main; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
