"""Durable run state: atomic file writes and the per-run SQLite store of generations."""

from safepeft.store.atomic import atomic_write_json, atomic_write_text
from safepeft.store.sqlite import RunStore, request_key

__all__ = ["RunStore", "atomic_write_json", "atomic_write_text", "request_key"]
