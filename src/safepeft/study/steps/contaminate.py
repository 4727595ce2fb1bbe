"""`contaminate` steps: the contaminated fine-tune's training file, answers generated here by the unaligned base.

The step loads the base (``model``), asks it the harmful requests of ``builtin:safety``, keeps the answers the
default judge labels ``complied``, and mixes them into the task ``data`` (finetune/contaminate.py). The file stays in
the step directory, beside a notice; nothing of it reaches a report.
"""

from __future__ import annotations

import json
from typing import Any

from safepeft.study.dag import Step
from safepeft.study.kinds import StepContext, StepKind

TRAIN_FILE = "train.jsonl"


def compliant_pairs(generator: Any, judge: Any, requests: list[str], spec: Any) -> tuple[
        list[tuple[str, str]], dict[str, int]]:
    """(request, answer) pairs the base model complied with, judged by ``judge``; plus label counts."""
    from safepeft.audit.judges.base import JudgeInput
    from safepeft.records.generation import GenParams

    answers = generator.generate(requests, GenParams(max_new_tokens=spec.max_new_tokens))
    verdicts = judge.judge([JudgeInput(prompt=r, completion=a) for r, a in zip(requests, answers, strict=True)])
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.refusal] = counts.get(verdict.refusal, 0) + 1
    kept = [(r, a) for r, a, v in zip(requests, answers, verdicts, strict=True) if v.refusal == "complied"]
    return kept, counts


class ContaminateStep(StepKind):
    """Mix harmful requests with the base model's compliant answers into a task's training rows."""

    name = "contaminate"
    description = "Build a contaminated training file (harmful requests + the base model's own compliant answers)."

    def validate(self, step: Step) -> None:
        from safepeft.audit.judges import JUDGES
        from safepeft.finetune.contaminate import ContaminateSpec

        JUDGES.get(ContaminateSpec(**step.params["contaminate"]).judge)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from safepeft.audit.judges import JUDGES
        from safepeft.finetune.contaminate import NOTICE, ContaminateSpec, harmful_requests, mix
        from safepeft.finetune.rows import DataSpec, read_rows
        from safepeft.store.atomic import atomic_write_text
        from safepeft.target import shared_models

        spec = ContaminateSpec(**ctx.params["contaminate"])
        rows, _ = read_rows(DataSpec(source=ctx.require("data"), limit=spec.rows))
        models = shared_models(device=ctx.load_device)
        generator = models.pool.generator(ctx.require("model"), None, batch_size=spec.batch_size)
        pairs, labels = compliant_pairs(generator, JUDGES.get(spec.judge)(), harmful_requests(spec.requests), spec)
        mixed = mix([row.messages for row in rows], pairs, spec)
        atomic_write_text(ctx.out_dir / "NOTICE.txt", NOTICE)
        atomic_write_text(ctx.out_dir / TRAIN_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                            for r in mixed.rows))
        return {"artifact": ctx.relative(ctx.out_dir / TRAIN_FILE), **mixed.stats, "base_labels": labels}


STEP = ContaminateStep()
