"""Report stage: results.json files -> one self-contained HTML page (or Markdown / JSON for CI logs).

No torch here (the report runs anywhere results can be copied to): only records, errors, registry and store.
Completions are redacted unless ``show_completions`` is set.
"""

from __future__ import annotations

from pathlib import Path

from safepeft.registry import Registry
from safepeft.store.atomic import atomic_write_text

# format name -> callable(ReportData) -> str
RENDERERS: Registry = Registry("report format", list_command="safepeft list report-formats")
RENDERERS.register("html", "safepeft.report.html:render_html")
RENDERERS.register("md", "safepeft.report.markdown:render_markdown")
RENDERERS.register("json", "safepeft.report.json_format:render_json")


def make_report(inputs: list[str | Path], fmt: str = "html", show_completions: bool = False,
                base: str | None = None, title: str = "safepeft report") -> str:
    """Load results, compute the report and render it in ``fmt`` (a RENDERERS name)."""
    from safepeft.report.build import build_report
    from safepeft.report.load import load_efficacy, load_variants

    render = RENDERERS.get(fmt)
    data = build_report(load_variants(list(inputs), default_base=base), show_completions=show_completions,
                        title=title, efficacy=load_efficacy(list(inputs)))
    return render(data)


def write_report(inputs: list[str | Path], out: str | Path, fmt: str = "html", show_completions: bool = False,
                 base: str | None = None, title: str = "safepeft report") -> Path:
    """Render and write the report atomically; returns its path."""
    out = Path(out)
    atomic_write_text(out, make_report(inputs, fmt, show_completions, base, title))
    return out


__all__ = ["RENDERERS", "make_report", "write_report"]
