"""results.json: the one format every audit kind writes and the report reads.

Field order is part of the format; a change needs a schema_version bump (readers reject newer versions).

A safety suite's headline rate is named after what its judge's verdict measures (``SAFETY_RATES``):
``compliance_rate`` ("did not refuse") under a refusal judge, ``harmful_rate`` only when a harm judge decided.
Files written before version 2 call it ``harmful_rate`` whatever the judge; they are read as they were written,
so consumers find the rate with ``safety_rate`` and label it with ``rate_label``, never by a fixed name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from safepeft.errors import DataError, ResumeError
from safepeft.records.base import Record

SCHEMA_VERSION = 2
"""2: ``SuiteResult.judge``; a refusal judge's safety rate is ``compliance_rate`` (1: always ``harmful_rate``)."""

Measures = Literal["refusal", "harm"]
SAFETY_RATES: dict[str, str] = {"harm": "harmful_rate", "refusal": "compliance_rate"}
"""What a judge's verdict measures -> the name of a safety suite's rate of its positive verdict."""
RATE_LABELS: dict[str, str] = {"harmful_rate": "harmful", "compliance_rate": "compliance (did not refuse)"}
"""How reports label each safety rate."""
RATE_WORDS: dict[str, str] = {"harmful_rate": "harmful", "compliance_rate": "compliance"}
"""One word per safety rate, for table heads ("Δ compliance")."""
MEASURE_LABELS: dict[str, str] = {"harm": "harmful content given", "refusal": "did not refuse"}
"""What a judge's positive verdict means, in words (jailbreak ASR under that judge)."""
_SHARES: dict[str, str] = {"harm": "share of answers judged to give harmful content",
                           "refusal": "share of answers that did not refuse"}


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


class SuiteJudge(Record):
    """Which judge decided a suite's verdict rates, and what its positive verdict measures."""

    spec: str
    """Judge name (the registry name, as in the top-level ``judge``)."""
    measures: Measures
    """refusal: the verdict says whether the model refused (rates count answers that did not refuse);
    harm: whether harmful content was given."""


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
    judge: SuiteJudge | None = None
    """The judge behind the suite's verdict rates (None: no judge verdicts, or a file older than version 2)."""


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


def rate_name(measures: str) -> str:
    """The safety rate's name under a judge that measures ``measures`` (``refusal`` or ``harm``)."""
    return SAFETY_RATES[measures]


def safety_rate(part: SuiteResult | CategoryResult | Mapping[str, Metric]) -> tuple[str, Metric] | None:
    """(name, metric) of the safety rate of a suite, category or attack part, whichever name it was written under;
    None when it has none (not a safety suite)."""
    metrics = part if isinstance(part, Mapping) else part.metrics
    return next(((name, metrics[name]) for name in SAFETY_RATES.values() if name in metrics), None)


def rate_label(name: str) -> str:
    """'harmful' / 'compliance (did not refuse)' for a safety rate's name; other names as they are."""
    return RATE_LABELS.get(name, name)


def rate_word(name: str) -> str:
    """'harmful' / 'compliance' for a safety rate's name; other names as they are."""
    return RATE_WORDS.get(name, name)


def judge_summary(judge: ArtifactRef | Mapping[str, Any]) -> str:
    """One line naming a judge, what its verdict measures and its measured agreement with human labels, from
    results.json's ``judge`` (an ArtifactRef or its JSON form); the console, HTML and Markdown reports share it."""
    ref = judge if isinstance(judge, ArtifactRef) else ArtifactRef.model_validate(judge)
    params = ref.params
    measures = params.get("measures")
    if measures in SAFETY_RATES:
        what = f"{ref.spec}, a {measures} judge ({SAFETY_RATES[measures]} = {_SHARES[measures]})"
    else:
        what = f"{ref.spec} (what its verdict measures is not recorded: results.json before version 2)"
    accuracy = params.get("accuracy")
    if not accuracy:
        return f"Judge: {what}; no measured agreement with human labels (rates are as judged)."
    counts = accuracy.get("counts") or {}
    n = sum(counts.values())
    agreement = accuracy.get("agreement")
    if agreement is None and n:  # written before the agreement was recorded
        agreement = (counts.get("tp", 0) + counts.get("tn", 0)) / n
    method = (params.get("validation") or {}).get("method") or "judge-eval"
    share = "measured" if agreement is None else f"agreement {agreement:.1%}"
    return (f"Judge: {what}; {share} with human labels on {n} completions ({method}), sensitivity "
            f"{accuracy['sensitivity']:.3f}, specificity {accuracy['specificity']:.3f}.")


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
