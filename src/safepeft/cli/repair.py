"""`safepeft repair safelora|splora`: repair a trained LoRA adapter against a base/aligned model pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safepeft.cli import options

BASE = typer.Option(..., "--base", help="Unaligned base model: `embedded`, a .gguf file, an HF directory or a hub id.")
ALIGNED = typer.Option(..., "--aligned", help="Safety-aligned model of the same architecture (e.g. `safepeft align` "
                       "output).")
ADAPTER = typer.Option(..., "--adapter", help="Trained LoRA adapter directory (trained on the aligned model).")
OUT = typer.Option(..., "--out", help="Directory for the repaired adapter (+ safepeft_repair.json).")
MODE = typer.Option("number", "--mode", help="threshold (score vs --tau) or number (the --k worst modules).")
STRICT = typer.Option(False, "--strict", help="Refuse an adapter whose safepeft_train.json is missing or names "
                      "another model than --aligned (default: warn).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing --out directory.")
JSON = typer.Option(False, "--json", help="Print safepeft_repair.json's summary as JSON.")

repair_app = typer.Typer(help="Repair a LoRA adapter post hoc (SafeLoRA, SPLoRA, RESTA, SafeMERGE, Safe Delta).",
                         no_args_is_help=True)


def _parse_k(raw: str | None, allow_all: bool) -> int | float | None:
    """--k as typed: an integer is a count of modules, anything else must be a share of them."""
    from safepeft.repair.selection import check_count_or_share

    if raw is None:
        return None
    try:
        value: int | float = int(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
    try:
        return check_count_or_share(value, allow_all)
    except ValueError:
        span = "(0, 1]" if allow_all else "(0, 1)"
        raise typer.BadParameter(f"expected a count of modules (an integer >= 1) or a share in {span} such as 0.25, "
                                 f"got {raw!r}.") from None


def _count_or_share(raw: str | None) -> int | float | None:
    return _parse_k(raw, allow_all=False)


def _count_or_share_or_all(raw: str | None) -> int | float | None:
    return _parse_k(raw, allow_all=True)


@repair_app.command("safelora")
def safelora(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT, mode: str = MODE,
    tau: float = typer.Option(0.5, "--tau", help="Threshold mode: project modules with cosine similarity <= tau."),
    k: str | None = typer.Option(None, "--k", callback=_count_or_share_or_all, help="Number mode: how many modules "
                                 "to project, a count (default 10) or a share of the adapter's modules (e.g. 0.5; "
                                 "1.0 projects all)."),
    strict: bool = STRICT, overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Project the least-aligned LoRA modules onto the alignment subspace (Hsu et al., NeurIPS 2024)."""
    _run("safelora", base, aligned, adapter, out, overwrite, as_json,
         {"mode": mode, "tau": tau, "strict": strict} | ({"k": k} if k is not None else {}), device)


@repair_app.command("splora")
def splora(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT, mode: str = MODE,
    tau: float = typer.Option(1.0, "--tau", help="Threshold mode: prune modules with E-DIEM >= tau (direction far)."),
    k: str | None = typer.Option(None, "--k", callback=_count_or_share, help="Number mode: how many modules to "
                                 "prune, a count (e.g. 3) or a share of the adapter's modules (e.g. 0.25, the "
                                 "default)."),
    reference: str = typer.Option("shape", "--reference", help="E-DIEM reference set: shape (modules of the same "
                                  "shape) or all."),
    statistic: str = typer.Option("median-iqr", "--statistic", help="Reference centre/spread: median-iqr or "
                                  "mean-std."),
    direction: str = typer.Option("far", "--direction", help="far: prune modules farthest from the alignment "
                                  "subspace (paper's intent); near: the official code's choice."),
    strict: bool = STRICT, overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Prune the LoRA modules that moved away from the alignment subspace, scored by E-DIEM (Ao et al., 2025)."""
    params = {"mode": mode, "tau": tau, "reference": reference, "statistic": statistic, "direction": direction,
              "strict": strict} | ({"k": k} if k is not None else {})
    _run("splora", base, aligned, adapter, out, overwrite, as_json, params, device)


def _run(method: str, base: str, aligned: str, adapter: Path, out: Path, overwrite: bool, as_json: bool,
         params: dict[str, Any], device: str) -> None:
    import json
    import warnings

    from safepeft.repair.run import RepairWarning, build_spec, repair_adapter

    spec = build_spec(method, params)
    library_show = warnings.showwarning

    def show(message: Any, category: type[Warning], *rest: Any) -> None:
        if issubclass(category, RepairWarning):
            typer.echo(f"warning: {message}", err=True)
        else:
            library_show(message, category, *rest)

    with warnings.catch_warnings():
        # ours are about this repair's inputs: print every one as it happens (Python shows each place only once).
        warnings.simplefilter("always", RepairWarning)
        warnings.showwarning = show
        report = repair_adapter(method, base=base, aligned=aligned, adapter=adapter, out=out, spec=spec,
                                overwrite=overwrite, device=device)
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
