"""The computed report as JSON (summary cells with deltas and CIs, chart data, examples, provenance)."""

from __future__ import annotations

from safepeft.report.model import ReportData


def render_json(data: ReportData) -> str:
    """The computed report as JSON; redacted completions are null."""
    return data.model_dump_json(indent=2) + "\n"
