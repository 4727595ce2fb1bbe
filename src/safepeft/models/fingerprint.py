"""Stable content fingerprints of weights, used as cache keys for generations and conversions.

Hashing a 500 MB file takes about a second, so file hashes are memoised by (path, size, mtime) in the cache dir.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from safepeft.store.atomic import atomic_write_json

# Only weights safepeft can load: pickles (.bin/.pt/.pth) are refused everywhere, so one lying beside the
# safetensors is never used; hashing it would read (possibly gigabytes of) a file no code path may open.
_WEIGHT_SUFFIXES = (".safetensors", ".gguf")
_CONFIG_FILES = ("config.json", "adapter_config.json")


def cache_dir() -> Path:
    """safepeft's cache: $SAFEPEFT_CACHE, else $XDG_CACHE_HOME/safepeft, else ~/.cache/safepeft."""
    if os.environ.get("SAFEPEFT_CACHE"):
        return Path(os.environ["SAFEPEFT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "safepeft"


def file_sha256(path: str | Path) -> str:
    path = Path(path).resolve()
    stat = path.stat()
    memo_path = cache_dir() / "file-hashes.json"
    memo_key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = _read_memo(memo_path)
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    value = digest.hexdigest()
    memo[memo_key] = value
    try:
        atomic_write_json(memo_path, memo)
    except OSError:
        pass  # a read-only cache only costs speed
    return value


def _read_memo(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def directory_fingerprint(directory: str | Path) -> str:
    """Hash of the weight and config files in a model or adapter directory (names + contents)."""
    directory = Path(directory)
    parts = []
    for file in sorted(directory.iterdir()):
        if file.is_file() and (file.suffix in _WEIGHT_SUFFIXES or file.name in _CONFIG_FILES):
            parts.append(f"{file.name}:{file_sha256(file)}")
    return _short("\n".join(parts))


def gguf_fingerprint(path: str | Path) -> str:
    return _short(f"gguf:{file_sha256(path)}")


def hub_fingerprint(repo_id: str, commit: str | None) -> str:
    return _short(f"hub:{repo_id}@{commit or 'unknown'}")


def combine(*parts: str | None) -> str:
    return _short("|".join(p or "-" for p in parts))


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
