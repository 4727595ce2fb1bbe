"""results.json: the one format every audit kind writes and the report reads.

Field order is part of the format; a change needs a schema_version bump (readers reject newer versions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from safepeft.errors import DataError, ResumeError
from safepeft.records.base import Record

SCHEMA_VERSION = 1


class Metric(Record):
    """A point estimate with its 95% confidence interval."""

    value: float | None
    """Point estimate; None when undefined (e.g. no items)."""
    ci95: tuple[float, float] | None = None
    """Percentile-bootstrap 95% interval, or None when not computed."""
    corrected: float | None = None
    """Rates only: the Rogan–Gladen estimate given the judge's measured sensitivity and specificity (None: the
    judge has no measured error rates)."""
    corrected_ci95: tuple[float, float] | None = None
    """95% interval of ``corrected``, bootstrapped over the audit items and the judge's validation counts."""


class CategoryResult(Record):
    """Metrics over a subset: one hazard category, one BBQ dimension or one attack."""

    n: int
    """Number of items in the subset."""
    metrics: dict[str, Metric]
    """Metric name to value."""


class Sample(Record):
    """One audited item, kept so the report can show examples and bootstrap differences between variants."""

    id: str
    """Stable item id within the suite (used to pair items across variants)."""
    category: str
    """Canonical category (hazard S-code name, BBQ dimension, ...)."""
    prompt: str
    """The prompt as sent (after any attack transform)."""
    completion: str | None = None
    """Model output; None for log-likelihood scored items."""
    label: str | None = None
    """Judge verdict or chosen answer (e.g. refused / complied / partial / blocked)."""
    score: float | None = None
    """Per-item outcome behind the suite's main metric (1 = harmful / attack succeeded / biased ...)."""
    attack: str | None = None
    """Attack that produced the prompt, for jailbreak suites."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Suite-specific details (e.g. BBQ context condition)."""


class SuiteResult(Record):
    """Metrics of one suite, overall and by category."""

    kind: str
    """safety | overrefusal | fairness | jailbreak | utility."""
    n: int
    """Number of items scored."""
    metrics: dict[str, Metric]
    """Overall metrics."""
    by_category: dict[str, CategoryResult] = Field(default_factory=dict)
    """Metrics per canonical category."""
    by_attack: dict[str, CategoryResult] | None = None
    """Metrics per attack (jailbreak suites only)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """How the suite was run (source path, limit, seed, mode ...)."""
    samples: list[Sample] = Field(default_factory=list)
    """Per-item outcomes."""


class ArtifactRef(Record):
    """A model, adapter, judge or guard that produced the results."""

    spec: str
    """What the user passed (hub id, path, registry name)."""
    fingerprint: str | None = None
    """Content hash of its weights (None for rule-based judges/guards)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra provenance: dtype, quantization scheme and bits, judge parameters ..."""


class AuditResults(Record):
    """Top-level results.json."""

    schema_version: int = SCHEMA_VERSION
    """Format version; readers refuse files newer than they know."""
    model: ArtifactRef
    """The audited base model (or quantized model)."""
    adapter: ArtifactRef | None = None
    """PEFT adapter applied on top, if any."""
    judge: ArtifactRef | None = None
    """Judge that labelled generations (None for log-likelihood-only audits)."""
    guard: ArtifactRef | None = None
    """Guardrail wrapping the model, if any."""
    suites: dict[str, SuiteResult] = Field(default_factory=dict)
    """Results per suite name (jailbreak suites are named ``jailbreak:<suite>``)."""
    provenance: dict[str, Any] = Field(default_factory=dict)
    """Library versions, seeds, wall time, command line."""

    def write(self, path: str | Path) -> None:
        from safepeft.store.atomic import atomic_write_text

        atomic_write_text(path, self.model_dump_json(indent=2))


def load_results(path: str | Path) -> AuditResults:
    """Read results.json, refusing unknown newer schema versions with a clear message."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"No results file at {path}.", "Run `safepeft audit ... --out DIR` first.") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}).", "Re-run the audit that wrote it.") from exc
    version = raw.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResumeError(
            f"{path} has schema_version {version!r}; this safepeft reads up to {SCHEMA_VERSION}.",
            "Upgrade safepeft (pip install -U safepeft).",
        )
    return AuditResults.model_validate(raw)
