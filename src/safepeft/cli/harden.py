"""`safepeft harden lox`: training-free hardening of an aligned model before fine-tuning (LoX)."""

from __future__ import annotations

from pathlib import Path

import typer

from safepeft.cli import options

OUT = typer.Option(..., "--out", help="Directory for the hardened model (+ safepeft_harden.json).")

harden_app = typer.Typer(help="Harden an aligned model before fine-tuning (LoX low-rank extrapolation).",
                         no_args_is_help=True)


@harden_app.command("lox")
def lox(
    base: str = typer.Option(..., "--base", help="Unaligned base model: `embedded`, a .gguf file, an HF directory "
                             "or a hub id."),
    aligned: str = typer.Option(..., "--aligned", help="Safety-aligned model of the same architecture."),
    out: Path = OUT,
    k: int = typer.Option(6, "--k", help="Rank of the safety subspace per weight matrix."),
    alpha: float = typer.Option(1.25, "--alpha", help="Extrapolation factor: W_aligned + alpha·P_k(W_aligned − "
                                "W_base)."),
    targets: str = typer.Option("all-linear", "--targets", help="all-linear, or comma-separated module suffixes "
                                "(e.g. q_proj,v_proj)."),
    svd: str = typer.Option("auto", "--svd", help="exact, randomized, or auto (exact up to 1024)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out directory."),
    as_json: bool = typer.Option(False, "--json", help="Print safepeft_harden.json's summary as JSON."),
    device: str = options.DEVICE,
) -> None:
    """Extrapolate the aligned weights along the top-k directions of the alignment update (Perin et al., 2025)."""
    import json

    from safepeft.repair import harden_model
    from safepeft.repair.lox import _spec

    spec = _spec({"k": k, "alpha": alpha, "targets": [t.strip() for t in targets.split(",") if t.strip()],
                  "svd": svd})
    report = harden_model("lox", base=base, aligned=aligned, out=out, spec=spec, overwrite=overwrite,
                          device=device)
    if as_json:
        typer.echo(json.dumps(report.summary, indent=2))
        return
    summary = report.summary
    typer.echo(f"lox: extrapolated {summary['extrapolated']} of {summary['matrices']} matrices (k={k}, "
               f"alpha={alpha}) -> {out}")
    held = summary["median_fraction_of_update_held"]
    if held is not None:
        typer.echo(f"  median share of the alignment update in the top-{k} directions: {held:.3g}")


def register(app: typer.Typer) -> None:
    app.add_typer(harden_app, name="harden")
