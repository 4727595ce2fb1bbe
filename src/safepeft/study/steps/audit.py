"""`audit` steps: `safepeft.audit.runner.run_audit` on one variant, with the base model shared across variants.

The audited target is built by ``safepeft.target.build_target``, as `safepeft audit` builds it, over this
process's ``Models``: consecutive audits of adapters of one base (the scheduler orders them so) load the base once
and swap adapters. Generations and judge verdicts are cached in the
step directory's run store, so a killed audit resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

from safepeft.errors import ConfigError
from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

RESULTS = "results.json"


def audit_entry(params: dict[str, Any]) -> Any:
    """The step's typed audit parameters (the study's ``AuditEntry``: every `safepeft audit` option)."""
    from pydantic import ValidationError

    from safepeft.study.spec import AuditEntry

    try:
        return AuditEntry.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"Invalid audit.{where}: {error['msg']}.", "Fix the study's `audit` entry.") from None


def audit_options(entry: Any) -> Any:
    """The ``AuditOptions`` part of an ``AuditEntry``."""
    from safepeft.audit.base import AuditOptions

    return AuditOptions(**entry.model_dump(include=set(AuditOptions.model_fields)))


def guard_spec(guard: dict[str, Any] | None) -> Any:
    """The study's guard entry (`name`, `params.model`, `params.calibration`) as a ``GuardSpec``."""
    if not guard:
        return None
    from safepeft.target import GuardSpec

    params = guard.get("params") or {}
    unknown = set(params) - {"model", "calibration"}
    if unknown:
        raise ConfigError(f"Unknown guard option(s) {sorted(unknown)} for {guard['name']!r}.",
                          "Known: model, calibration.")
    calibration = params.get("calibration")
    return GuardSpec(name=guard["name"], model=params.get("model"),
                     calibration=tuple(calibration) if calibration else None)


def target_options(ctx: StepContext) -> dict[str, Any]:
    """Where the audited variant runs: the study's `target:` entry, its device replaced by `study run --device`
    (which is in no step key, see ``StepContext.device``)."""
    return {**(ctx.params.get("target") or {}), **({"device": ctx.device} if ctx.device else {})}


class AuditStep(StepKind):
    """Audit one variant (model + adapter) on the study's suites."""

    name = "audit"
    description = "Audit a variant with `safepeft audit` (one base in memory shared by its adapters)."

    def validate(self, step: Step) -> None:
        from safepeft.audit.attacks import ATTACKS
        from safepeft.audit.judges import JUDGES
        from safepeft.audit.runner import build_suites

        entry = audit_entry(step.params["audit"])
        build_suites(entry.suites)
        JUDGES.get(entry.judge)
        for name in entry.attacks:
            ATTACKS.get(name)
        guard = guard_spec(step.params.get("guard"))
        if guard is not None:
            from safepeft.guard import GUARDS

            GUARDS.get(guard.name)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.audit.runner import build_suites, run_audit
        from safepeft.store import RunStore
        from safepeft.target import (
            JudgeSpec,
            TargetSpec,
            build_attacks,
            build_judge,
            build_target,
            check_served,
            shared_models,
        )

        entry = audit_entry(ctx.params["audit"])
        target_spec = TargetSpec(**target_options(ctx), model=ctx.require("model"),
                                 adapter=ctx.input("adapter"), served_adapter=ctx.params.get("served_adapter"),
                                 batch_size=entry.batch_size, guard=guard_spec(ctx.params.get("guard")))
        models = shared_models(target_spec.dtype, target_spec.device)
        if target_spec.served_adapter is not None:
            check_served(target_spec)
        store = RunStore(ctx.out_dir)
        try:
            target = build_target(target_spec, store, models)  # progress named by the step (progress.scope)
            judge = build_judge(JudgeSpec(name=entry.judge, **entry.judge_params.model_dump()), store, models,
                                target_spec)
            suites = build_attacks(build_suites(entry.suites), entry.attacks, judge, store, models,
                                   attacker_model=entry.attacker_model, rater_model=entry.attack_judge_model,
                                   like=target_spec)
            results = run_audit(
                target.generator, suites, judge, audit_options(entry), model=target.model, adapter=target.adapter,
                guard=target.guard.ref() if target.guard is not None else None, out_dir=ctx.out_dir, store=store,
                provenance={"study_step": ctx.step.name},
            )
        finally:
            store.close()
        return {"artifact": ctx.relative(ctx.out_dir / RESULTS), "suites": sorted(results.suites)}


STEP = AuditStep()
