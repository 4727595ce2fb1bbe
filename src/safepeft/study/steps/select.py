"""`select` steps: choose one repair candidate (a hyper-parameter setting, or any method for `auto`) on the
validation split, as `safepeft repair auto` does, and hand its artifact to the test audit.

The step reads the validation audits of the aligned reference, the fine-tune and every candidate, scores each with
``safepeft.efficacy.choose`` and writes repair_choice.json with every candidate's figures. Its artifact is the chosen
candidate's repaired adapter (or model), so the test audit measures exactly what was chosen.
"""

from __future__ import annotations

from typing import Any

from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

CHOICE = "repair_choice.json"


class SelectStep(StepKind):
    """Choose a repair's hyper-parameter (or method) on validation items."""

    name = "select"
    description = "Choose a repair candidate on the validation split (recovery at utility kept >= the minimum)."

    def validate(self, step: Step) -> None:
        from safepeft.errors import ConfigError

        count = len(step.params["candidates"])
        if count == 0 or any(f"candidate{i}" not in step.deps for i in range(count)):
            raise ConfigError(f"Step {step.name!r} has no candidates to choose from.", "This is a bug in the DAG.")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.efficacy import choose, outcomes, rate_of
        from safepeft.records import load_results
        from safepeft.records.efficacy import Candidate, Choice
        from safepeft.store.atomic import atomic_write_text

        def measured(role: str) -> Any:
            return outcomes(load_results(ctx.require(role)))

        given = ctx.params["candidates"]
        if len(given) == 1:  # nothing to choose: the DAG gave it no validation audits
            only = given[0]
            chosen, rule, n_harmful, n_utility = only["label"], "the only candidate", 0, 0
            rate = None  # no validation audit: no rate to name
            scored = [Candidate(label=only["label"], method=only["method"], params=only["params"], recovery=None,
                                utility_kept=None, harmful_rate=None, eligible=True)]
        else:
            aligned, finetuned = measured("aligned"), measured("finetuned")
            candidates = [(c["label"], c["method"], c["params"], measured(f"validation{i}"))
                          for i, c in enumerate(given)]
            chosen, rule, scored = choose(candidates, aligned, finetuned, ctx.params["min_utility_kept"])
            n_harmful, n_utility = len(set(aligned.harmful) & set(finetuned.harmful)), len(finetuned.utility)
            rate = rate_of(aligned, finetuned, *(c[3] for c in candidates))[0]
        index = next(i for i, c in enumerate(given) if c["label"] == chosen)
        choice = Choice(repair=ctx.step.name.rsplit("+", 1)[-1], chosen=chosen, rule=rule,
                        min_utility_kept=ctx.params["min_utility_kept"], candidates=scored, n_harmful=n_harmful,
                        n_utility=n_utility, safety_rate=rate)
        atomic_write_text(ctx.out_dir / CHOICE, choice.model_dump_json(indent=2))
        return {"artifact": ctx.dep_outputs[f"candidate{index}"]["artifact"], "chosen": chosen,
                "chosen_step": ctx.step.deps[f"candidate{index}"], "choice": ctx.relative(ctx.out_dir / CHOICE)}


STEP = SelectStep()
