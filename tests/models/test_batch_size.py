"""`--batch-size auto`: the CPU estimate, the CUDA probe (with a fake OOM), the cache, the HF wiring, the option."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from safepeft.models import batch_size as bs


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFEPEFT_CACHE", str(tmp_path / "cache"))


def _loaded(model, device="cpu", dtype="float32", fingerprint="fp-test"):
    return SimpleNamespace(model=model, fingerprint=fingerprint, adapter_fingerprint=None, device=device, dtype=dtype)


def _oom():
    return torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")


def test_cpu_estimate_is_half_the_free_memory_over_one_sequences_kv_cache(tiny_llama, monkeypatch):
    model = tiny_llama()  # 2 layers, 3 heads of 36 / 3 = 12 dims, 1 KV head
    per_sequence = 2 * 2 * 1 * 12 * 128 * 4  # layers x (K, V) x kv heads x head dim x length x fp32 bytes
    monkeypatch.setattr(bs, "available_memory", lambda: per_sequence * 2 * 37 + 5)
    # 100 tokens round up to the 128-token bucket.
    assert bs.resolve_batch_size("auto", _loaded(model), max_length=100) == 37
    assert bs.kv_cache_bytes(model.config, 128, 2) == per_sequence // 2  # bf16


def test_cpu_estimate_uses_the_configs_head_dim_and_stays_in_1_to_cap(tiny_llama):
    config = tiny_llama(head_dim=20).config  # head_dim set apart from hidden / heads
    assert bs.kv_cache_bytes(config, 64, 4) == 2 * 2 * 1 * 20 * 64 * 4
    assert bs.estimate_cpu(per_sequence=1000, available=10) == 1
    assert bs.estimate_cpu(per_sequence=1, available=10**12, cap=256) == 256


def test_cuda_probe_doubles_until_the_fake_oom_and_keeps_the_last_size_that_ran(tiny_llama, monkeypatch):
    tried, emptied = [], []

    def forward(model, batch, length, device):
        tried.append((batch, length, device))
        if batch > 24:
            raise _oom()

    monkeypatch.setattr(bs, "_forward", forward)
    monkeypatch.setattr(bs, "device_key", lambda device: f"{device}:fake-gpu")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    loaded = _loaded(tiny_llama(), device="cuda:0", dtype="bfloat16")
    assert bs.resolve_batch_size("auto", loaded, max_length=300) == 16
    assert [t[0] for t in tried] == [1, 2, 4, 8, 16, 32]
    assert {t[1:] for t in tried} == {(512, "cuda:0")}
    assert len(emptied) == len(tried)  # the cache is freed after every probe, the failed one included


def test_cuda_probe_stops_at_the_cap_and_never_goes_below_one():
    tried = []
    assert bs.probe_cuda(tried.append, cap=100) == 100
    assert tried == [1, 2, 4, 8, 16, 32, 64, 100]

    def always_oom(batch):
        raise _oom()

    assert bs.probe_cuda(always_oom) == 1


def test_the_probe_forward_runs_the_real_shape_on_the_model(tiny_llama, monkeypatch):
    model, shapes = tiny_llama(), []
    real = model.forward

    def forward(*args, **kwargs):
        shapes.append((tuple(kwargs["input_ids"].shape), kwargs["use_cache"]))
        if kwargs["input_ids"].shape[0] > 2:
            raise _oom()
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    assert bs.probe_cuda(lambda batch: bs._forward(model, batch, 64, "cpu")) == 2
    assert shapes == [((1, 64), True), ((2, 64), True), ((4, 64), True)]


def test_the_result_is_cached_and_reused(tiny_llama, monkeypatch, tmp_path):
    model = tiny_llama()
    calls = []
    monkeypatch.setattr(bs, "available_memory", lambda: calls.append(1) or 10**8)
    first = bs.resolve_batch_size("auto", _loaded(model), max_length=200)
    cached = json.loads((tmp_path / "cache" / bs.CACHE_FILE).read_text())
    assert list(cached.values()) == [first] and "fp-test" in next(iter(cached))

    def fail():
        raise AssertionError("estimated again instead of reading the cache")

    monkeypatch.setattr(bs, "available_memory", fail)
    assert bs.resolve_batch_size("auto", _loaded(model), max_length=250) == first  # same 256 bucket
    assert bs.resolve_batch_size("auto", _loaded(model), max_length=200, cap=3) == min(first, 3)
    monkeypatch.setattr(bs, "available_memory", lambda: calls.append(1) or 10**8)
    bs.resolve_batch_size("auto", _loaded(model, dtype="bfloat16"), max_length=200)  # another key
    bs.resolve_batch_size("auto", _loaded(model), max_length=200, refresh=True)
    assert len(calls) == 3


def test_parse_batch_size():
    assert bs.parse_batch_size("auto") == "auto" and bs.parse_batch_size(" AUTO ") == "auto"
    assert bs.parse_batch_size("8") == 8 and bs.parse_batch_size(3) == 3
    for bad in ("0", "-1", "x", "1.5", "", 0, True):
        with pytest.raises(ValueError, match="positive integer or 'auto'"):
            bs.parse_batch_size(bad)
    assert bs.chunk_size("auto") == bs.DEFAULT_CAP and bs.chunk_size(5) == 5


def test_hf_generator_auto_batches_by_the_resolved_size(tiny_loaded, monkeypatch):
    from safepeft.models import hf
    from safepeft.records.generation import GenParams

    asked, sizes = [], []
    monkeypatch.setattr(hf, "resolve_batch_size", lambda requested, loaded, *, max_length: asked.append(
        (requested, max_length)) or 2)
    real = tiny_loaded.model.generate
    monkeypatch.setattr(tiny_loaded.model, "generate",
                        lambda **kw: sizes.append(kw["input_ids"].shape[0]) or real(**kw))
    prompts = ["a", "bb", "ccc", "dddd", "eeeee"]
    params = GenParams(max_new_tokens=4)
    auto = hf.HFGenerator(tiny_loaded, batch_size="auto", progress=False).generate(prompts, params)
    assert sizes == [2, 2, 1]
    ids = [tiny_loaded.tokenizer(hf.HFGenerator(tiny_loaded).render(p), add_special_tokens=False)["input_ids"]
           for p in prompts]
    longest = max(map(len, ids))
    assert asked == [("auto", bs.length_bucket(longest + 4))]  # one resolution for the whole call
    assert auto == hf.HFGenerator(tiny_loaded, batch_size=2, progress=False).generate(prompts, params)


def test_batch_size_option_accepts_auto_and_rejects_bad_values_in_one_line(tiny_model_dir, capsys):
    """`--batch-size` is TargetSpec's field: `auto` or a positive int, a bad value one line naming the flag."""
    from safepeft.cli.main import run
    from safepeft.target import TargetSpec

    assert [TargetSpec(model="m", batch_size=v).batch_size for v in ("auto", "8", 8)] == ["auto", 8, 8]
    assert run(["generate", "--model", str(tiny_model_dir), "--prompt", "hi", "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Invalid --batch-size") and "'0'" in err and len(err.splitlines()) == 1, err


def test_generate_runs_with_batch_size_auto(tiny_model_dir, tmp_path, capsys):
    from safepeft.cli.main import run

    assert run(["generate", "--model", str(tiny_model_dir), "--prompt", "hi", "--batch-size", "auto",
                "--max-new-tokens", "2", "--jsonl"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["prompt"] == "hi"
    cached = json.loads((tmp_path / "cache" / bs.CACHE_FILE).read_text())
    assert len(cached) == 1 and "|cpu:" in next(iter(cached))


def test_an_auto_target_hands_the_generator_chunks_of_up_to_the_cap(tiny_model_dir, tmp_path):
    from safepeft.store import RunStore
    from safepeft.target import Models, TargetSpec, build_target

    with RunStore(tmp_path / "run") as store:
        for requested, chunk in (("auto", bs.DEFAULT_CAP), (3, 3)):
            target = build_target(TargetSpec(model=str(tiny_model_dir), batch_size=requested), store, Models(),
                                  progress=False)
            assert target.generator.chunk_size == chunk
