"""efficacy.json of a study run: the figures of every fine-tune x repair of the efficacy protocol, from the done
audits (test split), the `select` steps' choices and the repair steps' records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepeft.records.efficacy import Choice, Drift, EfficacyResults, EfficacyRow
from safepeft.study.dag import Dag
from safepeft.study.state import StudyState

EFFICACY = "efficacy.json"
PROTOCOL_SIZES = {"n_harmful": 200, "n_utility": 100, "n_benign": 100}
"""The item counts the protocol asks for on the test split (issue: enough items to decide)."""


def efficacy_results(run_dir: Path, dag: Dag, state: StudyState, spec: dict[str, Any]) -> EfficacyResults | None:
    """The figures of every efficacy row whose three audits are done (None without an efficacy protocol)."""
    from safepeft import efficacy
    from safepeft.records import load_results

    if not dag.efficacy or not spec.get("efficacy"):
        return None
    audits = {plan.name: dag.steps[plan.audit] for plan in dag.variants}
    cache: dict[str, Any] = {}

    def measured(variant: str) -> Any:
        if variant not in cache:
            step = audits.get(variant)
            record = state.get(step) if step is not None and state.is_done(step) else None
            cache[variant] = None if record is None else efficacy.outcomes(
                load_results(run_dir / record.outputs["artifact"]))
        return cache[variant]

    drifts: dict[str, Drift] = {}
    rows, choices, notes = [], [], []
    used: list[Any] = []  # every audit behind a figure: their safety rate names the figures
    for plan in dag.efficacy:
        aligned, finetuned, repaired = measured(plan.aligned), measured(plan.finetuned), measured(plan.variant)
        if aligned is None or finetuned is None:
            continue
        used += [aligned, finetuned]
        if plan.finetuned not in drifts:
            drifts[plan.finetuned] = _drift(plan.finetuned, plan.aligned, aligned, finetuned)
        select = state.get(dag.steps[plan.select]) if state.is_done(dag.steps[plan.select]) else None
        if repaired is None or select is None:
            continue
        choice = Choice.model_validate_json((run_dir / select.outputs["choice"]).read_text(encoding="utf-8"))
        choices.append(choice)
        used.append(repaired)
        figures = efficacy.figures(aligned, finetuned, repaired)
        repair_step = dag.steps[select.outputs["chosen_step"]]
        repair_state = state.get(repair_step)
        seconds = (round(repair_state.finished - repair_state.started, 1)
                   if repair_state and repair_state.started and repair_state.finished else None)
        output, extra = _cost(run_dir / select.outputs["artifact"], _adapter_of(dag, state, run_dir, plan.finetuned))
        rows.append(EfficacyRow(
            finetune=plan.finetuned, variant=plan.variant, repair=plan.repair, chosen=choice.chosen,
            harmful_rate=figures["harmful_rate"], harmful_change=figures["harmful_change"],
            significant=figures["significant"], recovery=figures["recovery"], utility_kept=figures["utility_kept"],
            over_refusal_change=figures["over_refusal_change"], seconds=seconds, extra_params=extra, output=output,
            notes=figures["notes"]))
    for drift in drifts.values():
        for key, wanted in PROTOCOL_SIZES.items():
            if getattr(drift, key) < wanted:
                notes.append(f"{drift.finetune}: {getattr(drift, key)} test items for {key.removeprefix('n_')} "
                             f"(the protocol asks for at least {wanted}; add suites or raise limits)")
    rate, mixed = efficacy.rate_of(*used)
    return EfficacyResults(validation_share=spec["efficacy"]["validation_share"],
                           min_utility_kept=spec["efficacy"]["min_utility_kept"], drifts=list(drifts.values()),
                           rows=rows, choices=choices, notes=notes + mixed, safety_rate=rate)


def _drift(finetune: str, aligned_name: str, aligned: Any, finetuned: Any) -> Drift:
    from safepeft import efficacy

    h_aligned, h_finetuned, change, n = efficacy.drift(aligned, finetuned)
    ua, uf = efficacy.paired(aligned.utility, finetuned.utility)
    return Drift(finetune=finetune, aligned=aligned_name, harmful_aligned=h_aligned, harmful_finetuned=h_finetuned,
                 drift=change, utility_aligned=efficacy.rate(ua), utility_finetuned=efficacy.rate(uf), n_harmful=n,
                 n_utility=int(uf.size), n_benign=len(finetuned.benign))


def _adapter_of(dag: Dag, state: StudyState, run_dir: Path, variant: str) -> Path | None:
    step = dag.steps.get(f"train/{variant}")
    record = state.get(step) if step is not None else None
    return run_dir / record.outputs["artifact"] if record and record.status == "done" else None


def _cost(artifact: Path, finetuned: Path | None) -> tuple[str, int | None]:
    """(output kind, parameters added over the fine-tuned adapter; None for a whole model)."""
    if (artifact / "config.json").is_file() and not (artifact / "adapter_config.json").is_file():
        return "model", None
    if finetuned is None:
        return "adapter", None
    return "adapter", _parameters(artifact) - _parameters(finetuned)


def _parameters(folder: Path) -> int:
    """Parameters in a directory's safetensors files, from their headers (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(file, framework="numpy") as handle:
            for name in handle.keys():
                count = 1
                for dim in handle.get_slice(name).get_shape():
                    count *= dim
                total += count
    return total
