"""The run store: one SQLite file (WAL mode) per run directory holding every generation and score.

A request is identified by a hash of (generator identity, prompt, decoding parameters); a request already in the
store is never recomputed, which is what makes a killed run resume where it stopped. Each batch is written in one
transaction, so a kill leaves whole batches or nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from safepeft.errors import ResumeError

SCHEMA_VERSION = 1
STORE_NAME = "store.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model_fingerprint TEXT NOT NULL,
    adapter_fingerprint TEXT,
    prompt TEXT NOT NULL,
    params TEXT NOT NULL,
    output TEXT NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS loglikelihoods (
    key TEXT PRIMARY KEY,
    model_fingerprint TEXT NOT NULL,
    adapter_fingerprint TEXT,
    request TEXT NOT NULL,
    logprob REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""


def request_key(*parts: Any) -> str:
    """Stable hash of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RunStore:
    """SQLite store for one run directory. Safe for one writer and many readers (WAL)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / STORE_NAME
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._check_version()

    def _check_version(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise ResumeError(
                f"The store {self.path} has schema version {row[0]}; this safepeft knows up to {SCHEMA_VERSION}.",
                "Upgrade safepeft, or use a new --run-dir.",
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generations -------------------------------------------------------------------------------------------
    def get_generations(self, keys: Sequence[str]) -> dict[str, str]:
        return self._lookup("generations", "output", keys)

    def put_generations(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert a batch atomically. Each row: key, model_fingerprint, adapter_fingerprint, prompt, params,
        output, seconds."""
        now = time.time()
        values = [
            (
                r["key"], r["model_fingerprint"], r.get("adapter_fingerprint"), r["prompt"],
                json.dumps(r["params"], sort_keys=True), r["output"], float(r["seconds"]), now,
            )
            for r in rows
        ]
        with self._transaction():
            self._conn.executemany("INSERT OR IGNORE INTO generations VALUES (?,?,?,?,?,?,?,?)", values)

    def count_generations(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def is_empty(self) -> bool:
        """True when nothing was stored yet (no generation, log-likelihood or record)."""
        return not any(self._conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                       for table in ("generations", "loglikelihoods", "records"))

    # -- log-likelihoods ---------------------------------------------------------------------------------------
    def get_loglikelihoods(self, keys: Sequence[str]) -> dict[str, float]:
        return self._lookup("loglikelihoods", "logprob", keys)

    def _lookup(self, table: str, column: str, keys: Sequence[str]) -> dict[str, Any]:
        """{key: column} for the stored keys; chunked to stay under SQLite's bound-parameter limit."""
        found: dict[str, Any] = {}
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk)
            found.update(rows.fetchall())
        return found

    def put_loglikelihoods(self, rows: Iterable[dict[str, Any]]) -> None:
        now = time.time()
        values = [
            (r["key"], r["model_fingerprint"], r.get("adapter_fingerprint"), r["request"], float(r["logprob"]), now)
            for r in rows
        ]
        with self._transaction():
            self._conn.executemany("INSERT OR IGNORE INTO loglikelihoods VALUES (?,?,?,?,?,?)", values)

    # -- generic records (judge verdicts, attack queries, study steps ...) -----------------------------------
    def get_record(self, namespace: str, key: str) -> Any | None:
        row = self._conn.execute(
            "SELECT value FROM records WHERE namespace=? AND key=?", (namespace, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put_record(self, namespace: str, key: str, value: Any) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO records VALUES (?,?,?,?)",
                (namespace, key, json.dumps(value, sort_keys=True, default=str), time.time()),
            )

    def records(self, namespace: str) -> dict[str, Any]:
        rows = self._conn.execute("SELECT key, value FROM records WHERE namespace=?", (namespace,)).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def _transaction(self) -> _Tx:
        return _Tx(self._conn)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
