import sqlite3

import pytest

from safepeft.errors import ResumeError
from safepeft.models.cached import CachedGenerator
from safepeft.models.doubles import FixedGenerator
from safepeft.records import GenParams, LoglikelihoodRequest
from safepeft.store import RunStore, atomic_write_text


def test_cached_generator_never_recomputes(tmp_path):
    inner = FixedGenerator(lambda p: f"out:{p}")
    with RunStore(tmp_path) as store:
        cached = CachedGenerator(inner, store, chunk_size=2, progress=False)
        params = GenParams(max_new_tokens=5)
        first = cached.generate(["a", "b", "a", "c"], params)
        assert first == ["out:a", "out:b", "out:a", "out:c"]
        assert sorted(inner.calls) == ["a", "b", "c"]  # duplicate prompt computed once
        inner.calls.clear()
        assert cached.generate(["c", "a", "d"], params) == ["out:c", "out:a", "out:d"]
        assert inner.calls == ["d"]
        inner.calls.clear()
        cached.generate(["a"], GenParams(max_new_tokens=6))  # other params: other key
        assert inner.calls == ["a"]
        assert store.count_generations() == 5


def test_cached_loglikelihood(tmp_path):
    calls = []

    def score(request):
        calls.append(request.continuation)
        return -1.5

    with RunStore(tmp_path) as store:
        cached = CachedGenerator(FixedGenerator("x", logprob=score), store, progress=False)
        requests = [LoglikelihoodRequest(context="c", continuation=x) for x in ["a", "b"]]
        assert cached.loglikelihood(requests) == [-1.5, -1.5]
        assert cached.loglikelihood(requests) == [-1.5, -1.5]
        assert calls == ["a", "b"]


def test_failed_batch_writes_nothing(tmp_path):
    with RunStore(tmp_path) as store:
        rows = [{"key": "k1", "model_fingerprint": "m", "prompt": "p", "params": {}, "output": "o", "seconds": 0.1},
                {"key": "k2", "model_fingerprint": "m", "prompt": "p"}]  # second row is malformed
        with pytest.raises(KeyError):
            store.put_generations(rows)
        assert store.count_generations() == 0


def test_wal_mode_and_newer_schema_rejected(tmp_path):
    RunStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ResumeError, match="schema version 99"):
        RunStore(tmp_path)


def test_records_namespace(tmp_path):
    with RunStore(tmp_path) as store:
        store.put_record("judge", "k", {"label": "refused"})
        assert store.get_record("judge", "k") == {"label": "refused"}
        assert store.get_record("judge", "missing") is None
        assert store.records("judge") == {"k": {"label": "refused"}}


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]
