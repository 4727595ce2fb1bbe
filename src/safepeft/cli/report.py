"""`safepeft report`: results.json files or run directories -> one self-contained HTML page (or Markdown / JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from safepeft.errors import ConfigError


def report(
    inputs: list[Path] = typer.Argument(..., help="Run directories or results.json files (a study's run dir "
                                        "covers all its variants)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file. Default: report.html in the first run "
                                    "directory for html; stdout for md and json."),
    fmt: str = typer.Option("html", "--format", "-f", help="html, md or json."),
    show_completions: bool = typer.Option(False, "--show-completions", help="Include model completions (they may "
                                          "contain harmful text); redacted by default."),
    base: str | None = typer.Option(None, "--base", help="Compare variants that declare no base with this one."),
    title: str = typer.Option("safepeft report", "--title", help="Page title."),
) -> None:
    """Summarise audits: deltas vs base with CIs, hazard heatmap, BBQ, ASR, safety-utility front, provenance."""
    from safepeft.report import RENDERERS, make_report, write_report

    if fmt not in RENDERERS:
        raise RENDERERS.unknown(fmt)
    if out is None and fmt == "html":
        first = inputs[0]
        out = (first if first.is_dir() else first.parent) / "report.html"
    if out is None:
        typer.echo(make_report(inputs, fmt, show_completions, base, title), nl=False)
        return
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory.", "Pass a file name, e.g. --out report.html.")
    path = write_report(inputs, out, fmt, show_completions, base, title)
    typer.echo(f"Wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
