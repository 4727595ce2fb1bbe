"""Issue #16: bench/gpu.py is the one prepared device check. Without CUDA it must exit 0 at once with every figure
null and a reason (no 7B allocation on a CPU box); `--smoke` runs its code paths on tiny shapes so a bug shows here
rather than on rented device time."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"


def _keys() -> tuple[str, ...]:
    """bench/gpu.py's KEYS, imported from its file (bench/ is not a package; nothing is added to sys.path)."""
    spec = importlib.util.spec_from_file_location("safepeft_bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.KEYS


KEYS = _keys()


def _run(*args: str) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same answer on a machine that has a GPU
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_cuda_every_figure_is_null_with_the_reason():
    result = _run()
    assert set(KEYS) <= set(result)
    assert all(result[key] is None for key in KEYS), result
    assert result["reasons"] == dict.fromkeys(KEYS, "CUDA not available")
    assert result["gpu"] is None and result["elapsed_s"] < 5  # nothing was loaded


def test_smoke_run_measures_every_section_but_the_demo_on_the_cpu():
    result = _run("--smoke", "--device", "cpu")
    for key in KEYS:
        assert (result[key] is None) == (key in result["reasons"]), (key, result)
    missing = set(result["reasons"])
    assert missing == {"lora7b_peak_gib", "safelora7b_peak_gib", "demo_quick_seconds"}, result["reasons"]
    assert all(result[key] > 0 for key in KEYS if key not in missing)
