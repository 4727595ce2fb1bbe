"""bench/generate.py's bandwidth probe: the L3 it sizes the buffer from, and what it reports (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "generate.py"


def _bench():
    spec = importlib.util.spec_from_file_location("safepeft_bench_generate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cache(root: Path, cpu: int, index: int, level: int, size: str, shared: str) -> None:
    folder = root / f"cpu{cpu}" / "cache" / f"index{index}"
    folder.mkdir(parents=True)
    for name, value in (("level", level), ("size", size), ("shared_cpu_list", shared)):
        (folder / name).write_text(f"{value}\n")


def test_l3_is_summed_over_distinct_instances(tmp_path):
    for cpu in range(4):  # two L3 instances of 32 MiB and 16 MiB, each seen by two CPUs; L2 is not counted
        _cache(tmp_path, cpu, 2, 2, "1024K", str(cpu))
        _cache(tmp_path, cpu, 3, 3, "32768K" if cpu < 2 else "16M", "0-1" if cpu < 2 else "2-3")
    assert _bench().l3_bytes(tmp_path) == 48 * 2**20
    assert _bench().l3_bytes(tmp_path / "missing") is None


def test_probe_reads_a_buffer_beyond_the_caches_and_reports_its_method():
    bench = _bench()
    probe = bench.read_bandwidth(repeats=1, min_bytes=64 * 2**20)
    l3 = bench.l3_bytes()
    assert probe["l3_bytes"] == l3
    assert probe["buffer_bytes"] >= max(64 * 2**20 - 4 * 4096, 8 * (l3 or 0) - 4 * 4096)  # whole rows of 4096
    assert set(probe["probes_gb_s"]) == {"sum", "matvec"} and probe["gb_s"] > 0
    assert round(probe["gb_s"], 2) == max(probe["probes_gb_s"].values())
    assert f"{probe['buffer_bytes'] / 2**30:.2f} GiB" in probe["method"]
