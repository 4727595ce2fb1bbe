"""Typed, versioned records that stages exchange. No torch imports here: report/ reads these."""

from safepeft.records.generation import GenParams, LoglikelihoodRequest, Message, Prompt, prompt_text
from safepeft.records.results import (
    SCHEMA_VERSION,
    ArtifactRef,
    AuditResults,
    CategoryResult,
    Metric,
    Sample,
    SuiteResult,
    load_results,
)

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactRef",
    "AuditResults",
    "CategoryResult",
    "GenParams",
    "LoglikelihoodRequest",
    "Message",
    "Metric",
    "Prompt",
    "Sample",
    "SuiteResult",
    "load_results",
    "prompt_text",
]
