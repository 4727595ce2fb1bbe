"""`safepeft repair safelora|splora`: repair a trained LoRA adapter against a base/aligned model pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

BASE = typer.Option(..., "--base", help="Unaligned base model: `embedded`, a .gguf file, an HF directory or a hub id.")
ALIGNED = typer.Option(..., "--aligned", help="Safety-aligned model of the same architecture (e.g. `safepeft align` "
                       "output).")
ADAPTER = typer.Option(..., "--adapter", help="Trained LoRA adapter directory (trained on the aligned model).")
OUT = typer.Option(..., "--out", help="Directory for the repaired adapter (+ safepeft_repair.json).")
MODE = typer.Option("number", "--mode", help="threshold (score vs --tau) or number (the --k worst modules).")
K = typer.Option(10, "--k", min=1, help="Number mode: how many modules to repair.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing --out directory.")
JSON = typer.Option(False, "--json", help="Print safepeft_repair.json's summary as JSON.")

repair_app = typer.Typer(help="Repair a LoRA adapter post hoc (SafeLoRA, SPLoRA, RESTA, SafeMERGE, Safe Delta).",
                         no_args_is_help=True)


@repair_app.command("safelora")
def safelora(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT, mode: str = MODE,
    tau: float = typer.Option(0.5, "--tau", help="Threshold mode: project modules with cosine similarity <= tau."),
    k: int = K, overwrite: bool = OVERWRITE, as_json: bool = JSON,
) -> None:
    """Project the least-aligned LoRA modules onto the alignment subspace (Hsu et al., NeurIPS 2024)."""
    _run("safelora", base, aligned, adapter, out, overwrite, as_json, {"mode": mode, "tau": tau, "k": k})


@repair_app.command("splora")
def splora(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT, mode: str = MODE,
    tau: float = typer.Option(1.0, "--tau", help="Threshold mode: prune modules with E-DIEM >= tau (direction far)."),
    k: int = K,
    reference: str = typer.Option("shape", "--reference", help="E-DIEM reference set: shape (modules of the same "
                                  "shape) or all."),
    statistic: str = typer.Option("median-iqr", "--statistic", help="Reference centre/spread: median-iqr or "
                                  "mean-std."),
    direction: str = typer.Option("far", "--direction", help="far: prune modules farthest from the alignment "
                                  "subspace (paper's intent); near: the official code's choice."),
    overwrite: bool = OVERWRITE, as_json: bool = JSON,
) -> None:
    """Prune the LoRA modules that moved away from the alignment subspace, scored by E-DIEM (Ao et al., 2025)."""
    params = {"mode": mode, "tau": tau, "k": k, "reference": reference, "statistic": statistic,
              "direction": direction}
    _run("splora", base, aligned, adapter, out, overwrite, as_json, params)


def _run(method: str, base: str, aligned: str, adapter: Path, out: Path, overwrite: bool, as_json: bool,
         params: dict[str, Any]) -> None:
    import json

    from safepeft.repair.run import build_spec, repair_adapter

    report = repair_adapter(method, base=base, aligned=aligned, adapter=adapter, out=out,
                            spec=build_spec(method, params), overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps(report.summary, indent=2))
        return
    acted = [m for m in report.modules if m.action in ("projected", "pruned")]
    verb = acted[0].action if acted else "changed"
    typer.echo(f"{method}: {verb} {len(acted)} of {len(report.modules)} modules -> {out}")
    for module in acted:
        typer.echo(f"  {module.name}  (score {module.score:.4g})")
    skipped = [m for m in report.modules if m.action == "skipped"]
    if skipped:
        typer.echo(f"  ({len(skipped)} skipped: {skipped[0].reason})", err=True)
    extra = {key: value for key, value in report.summary.items() if key in (
        "pdst", "params_removed", "params_removed_fraction", "flops_per_token_removed")}
    typer.echo("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()))


def register(app: typer.Typer) -> None:
    from safepeft.cli.repair_menu import add_commands

    add_commands(repair_app)  # resta, safemerge, safedelta
    app.add_typer(repair_app, name="repair")
