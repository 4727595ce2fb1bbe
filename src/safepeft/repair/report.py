"""safepeft_repair.json: what a repair did to every module, with its parameters and diagnostics.

No torch here, so the report stage could read it. Field order is part of the format (schema_version bump to change).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from safepeft.records.base import Record
from safepeft.records.results import ArtifactRef

REPAIR_SCHEMA_VERSION = 1

Action = Literal["projected", "pruned", "merged", "edited", "kept", "skipped"]


class ModuleDecision(Record):
    """One adapter module: its score and what the repair did to it."""

    name: str
    """Module name in the model, e.g. model.layers.0.self_attn.q_proj."""
    shape: tuple[int, int]
    """(d_out, d_in) of the layer's weight."""
    rank: int
    """LoRA rank of this module."""
    score: float | None
    """The method's score (SafeLoRA: cosine similarity; SPLoRA: E-DIEM); None when it is undefined."""
    action: Action
    """projected / pruned / merged / edited (acted on), kept (not selected), skipped (no score: see reason)."""
    reason: str | None = None
    """Why a module was skipped."""
    details: dict[str, float | str | None] = Field(default_factory=dict)
    """Per-module quantities behind the score (‖V‖_F, distances, ...)."""


class RepairReport(Record):
    """Top-level safepeft_repair.json."""

    schema_version: int = REPAIR_SCHEMA_VERSION
    """Format version; readers refuse files newer than they know."""
    method: str
    """Registry name of the repair method (safelora, splora)."""
    params: dict[str, Any]
    """The method's spec (mode, tau, k, ...)."""
    base: ArtifactRef
    """Unaligned base model."""
    aligned: ArtifactRef
    """Safety-aligned model of the same architecture."""
    adapter: ArtifactRef
    """The LoRA adapter that was repaired."""
    modules: list[ModuleDecision]
    """Every LoRA module, sorted by name."""
    summary: dict[str, Any]
    """Method diagnostics: counts, SafeLoRA's Pdst, SPLoRA's params/FLOPs removed and reference sets."""
    provenance: dict[str, Any] = Field(default_factory=dict)
    """Library versions, wall time, creation time."""
    output: str = "adapter"
    """What `out` holds: a PEFT LoRA adapter (`adapter`) or a full model directory (`model`)."""
    device: str | None = None
    """Where the repair's math ran (cpu, cuda, cuda:N); None in records written before it was recorded."""


HARDEN_FILE = "safepeft_harden.json"


class HardenReport(Record):
    """safepeft_harden.json: a training-free hardening of an aligned model (LoX), written beside its weights."""

    schema_version: int = REPAIR_SCHEMA_VERSION
    """Format version; readers refuse files newer than they know."""
    method: str
    """Registry name of the hardening method (lox)."""
    params: dict[str, Any]
    """The method's spec (k, alpha, ...)."""
    base: ArtifactRef
    """Unaligned base model."""
    aligned: ArtifactRef
    """The aligned model that was hardened."""
    modules: list[ModuleDecision]
    """Every weight matrix considered: extrapolated, or skipped (no alignment change)."""
    summary: dict[str, Any]
    """Counts and the share of the alignment update the top-k directions hold."""
    provenance: dict[str, Any] = Field(default_factory=dict)
    """Library versions, wall time, creation time."""
    device: str | None = None
    """Where the hardening's math ran (cpu, cuda, cuda:N); None in records written before it was recorded."""
