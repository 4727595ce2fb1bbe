"""`safepeft repair resta|safemerge|safedelta`: the weight-editing repairs beside SafeLoRA and SPLoRA.

The CLI gathers the inputs the repair stage cannot import itself (stage folders never import each other): the safety
LoRA SafeMERGE merges (trained here on the aligned model with builtin:safety when none is given) and Safe Delta's
safety conversations (builtin:safety's harmful requests with their refusals).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from safepeft.cli import options
from safepeft.cli.repair import ADAPTER, ALIGNED, BASE, JSON, OUT, OVERWRITE

SAFETY_ADAPTER = typer.Option(None, "--safety-adapter", help="Safety LoRA trained on the aligned model; default: "
                              "train one on builtin:safety (next to --out).")


def add_commands(app: typer.Typer) -> None:
    app.command("resta")(resta)
    app.command("safemerge")(safemerge)
    app.command("safedelta")(safedelta)
    app.command("auto")(auto)


def auto(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT,
    methods: list[str] = typer.Option([], "--method", help="Only these repairs (repeatable; default: all)."),
    safety_suites: list[str] = typer.Option(["builtin"], "--safety-suite", help="Harmful suite(s) scored on the "
                                            "validation split (repeatable)."),
    utility_suites: list[str] = typer.Option(["arithmetic:150"], "--utility-suite", help="The utility suite(s) "
                                             "the repair must keep (repeatable), e.g. gsm8k:PATH."),
    limit: int = typer.Option(60, "--limit", min=1, help="At most this many items per suite."),
    min_utility_kept: float = typer.Option(0.95, "--min-utility-kept", min=0.0, help="A candidate must keep at "
                                           "least this share of the adapter's utility."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens", min=1, help="Generation budget per item."),
    judge: str = typer.Option("classifier", "--judge", help="Judge of the harmful suite's generations."),
    overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Score every repair over its main hyper-parameter on a validation split; write the best that keeps utility."""
    from safepeft.repair.run import repair_device
    from safepeft.study.auto import repair_auto

    repair_device(device)  # a device this machine lacks fails before any step runs
    result = repair_auto(base, aligned, adapter, out, methods=list(methods) or None,
                         safety_suites=tuple(safety_suites), utility_suites=tuple(utility_suites), limit=limit,
                         min_utility_kept=min_utility_kept, max_new_tokens=max_new_tokens, judge=judge,
                         overwrite=overwrite, report=_step_printer(), device=device)
    choice = result.choice
    if as_json:
        typer.echo(choice.model_dump_json(indent=2))
        return
    typer.echo(f"chose {choice.chosen} ({choice.rule}) -> {out}")
    for c in choice.candidates:
        mark = "*" if c.label == choice.chosen else " "
        typer.echo(f" {mark} {c.label:<28} recovery {_fmt(c.recovery)}  utility kept {_fmt(c.utility_kept)}"
                   f"{'' if c.eligible else '  (below --min-utility-kept)'}")
    typer.echo(f"({choice.n_harmful} harmful and {choice.n_utility} utility validation items; every candidate is "
               f"kept in {result.run_dir})")


def _fmt(value: float | None) -> str:
    return "   –  " if value is None else f"{value:6.1%}"


def _step_printer() -> Any:
    def report(step: Any, result: dict[str, Any]) -> None:
        status = "done" if result["ok"] else f"failed: {result['error']}"
        typer.echo(f"  {step.name}: {status}", err=True)

    return report


def resta(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT,
    beta: float = typer.Option(0.5, "--beta", help="Coefficient of the safety vector θ_aligned − θ_base."),
    dare: float = typer.Option(0.0, "--dare", help="DARE drop rate of the fine-tuning delta (model output only)."),
    seed: int = typer.Option(0, "--seed", help="Seed of DARE's masks."),
    output: str = typer.Option("model", "--output", help="model (exact full weights) or lora (rank-k safety vector)."),
    k: int = typer.Option(16, "--k", help="lora output: rank of the safety vector per matrix."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help="lora output: adapter or all-linear."),
    svd: str = typer.Option("auto", "--svd", help="lora output: exact, randomized or auto."),
    overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Re-add the safety vector to the fine-tuned weights, optionally after DARE (Bhardwaj et al., ACL 2024)."""
    params = {"beta": beta, "dare": dare, "seed": seed, "output": output, "k": k, "lora_targets": lora_targets,
              "svd": svd}
    run_repair("resta", base, aligned, adapter, out, overwrite, as_json, params, device=device)


def safemerge(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT,
    safety_adapter: Path | None = SAFETY_ADAPTER,
    mode: str = typer.Option("threshold", "--mode", help="threshold (cosine <= --tau) or number (the --k worst)."),
    tau: float = typer.Option(0.35, "--tau", help="Cosine threshold: merge modules with similarity <= tau."),
    k: int = typer.Option(10, "--k", help="Number mode: how many modules to merge."),
    weight: float = typer.Option(0.8, "--weight", help="Weight of the fine-tuned update in merged modules."),
    safety_weight: float | None = typer.Option(None, "--safety-weight", help="Weight of the safety update "
                                               "(default 1 - weight)."),
    merge: str = typer.Option("linear", "--merge", help="linear, dare_linear or concat (exact, rank r + r_s)."),
    density: float = typer.Option(0.5, "--density", help="dare_linear: fraction of factor entries kept."),
    overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Merge a safety LoRA into the modules that left the alignment subspace (Djuhera et al., 2025)."""
    from safepeft.finetune.safety_lora import train_safety_adapter

    params = {"mode": mode, "tau": tau, "k": k, "weight": weight, "safety_weight": safety_weight, "merge": merge,
              "density": density}
    from safepeft.repair.run import build_spec, repair_device

    build_spec("safemerge", params)  # a bad option fails before any training
    device = repair_device(device)  # so does a device this machine lacks
    if safety_adapter is None:
        safety_adapter = out.parent / f"{out.name}.safety-lora"
        if not (safety_adapter / "adapter_config.json").is_file():
            typer.echo(f"training a safety LoRA on {aligned} with builtin:safety -> {safety_adapter}", err=True)
            train_safety_adapter(aligned, adapter, safety_adapter, device=device)
    run_repair("safemerge", base, aligned, adapter, out, overwrite, as_json, params,
               {"safety_adapter": safety_adapter}, device)


def safedelta(
    base: str = BASE, aligned: str = ALIGNED, adapter: Path = ADAPTER, out: Path = OUT,
    scale: float = typer.Option(0.1, "--scale", help="Safety budget as a fraction of the whole delta's safety loss "
                                "(a negative value: unlimited)."),
    damp: float = typer.Option(0.01, "--damp", help="Hessian dampening relative to its mean diagonal."),
    compensate: bool = typer.Option(True, "--compensate/--no-compensate", help="Add the OBS compensation vector."),
    max_samples: int = typer.Option(64, "--max-samples", help="Safety conversations for the curvature."),
    overwrite: bool = OVERWRITE, as_json: bool = JSON, device: str = options.DEVICE,
) -> None:
    """Keep the delta entries a safety-loss budget allows, plus the compensation vector (Lu et al., ICML 2025)."""
    from safepeft.finetune.safety_lora import safety_conversations

    params = {"scale": None if scale < 0 else scale, "damp": damp, "compensate": compensate,
              "max_samples": max_samples}
    run_repair("safedelta", base, aligned, adapter, out, overwrite, as_json, params,
               {"safety_conversations": safety_conversations()}, device)


def run_repair(method: str, base: str, aligned: str, adapter: Path, out: Path, overwrite: bool, as_json: bool,
               params: dict[str, Any], inputs: dict[str, Any] | None = None, device: str = "auto") -> None:
    from safepeft.repair.run import build_spec, repair_adapter

    report = repair_adapter(method, base=base, aligned=aligned, adapter=adapter, out=out,
                            spec=build_spec(method, params), overwrite=overwrite, inputs=inputs, device=device)
    if as_json:
        typer.echo(json.dumps(report.summary, indent=2))
        return
    acted = [m for m in report.modules if m.action not in ("kept", "skipped")]
    typer.echo(f"{method}: wrote a {report.output} ({len(acted)} of {len(report.modules)} adapter modules "
               f"{acted[0].action if acted else 'changed'}) -> {out}")
    figures = {k: v for k, v in report.summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    typer.echo("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
