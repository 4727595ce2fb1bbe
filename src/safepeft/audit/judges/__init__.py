"""The judge registry: `--judge NAME` names an entry here (see `safepeft list judges`); `classifier` is the default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.audit.judges.base import Judge

DEFAULT_JUDGE = "classifier"
"""What `audit`, `study` and `demo` use when no judge is named."""

JUDGES: Registry[type[Judge]] = Registry("judge", "safepeft list judges", base="safepeft.audit.judges.base:Judge")
JUDGES.register("classifier", "safepeft.audit.judges.classifier:ClassifierJudge")
JUDGES.register("refusal", "safepeft.audit.judges.refusal:RefusalJudge")
JUDGES.register("llama-guard", "safepeft.audit.judges.llama_guard:LlamaGuardJudge")
JUDGES.register("llama-guard-3", "safepeft.audit.judges.llama_guard:LlamaGuard3Judge")
JUDGES.register("harmbench-cls", "safepeft.audit.judges.harmbench_cls:HarmBenchClassifierJudge")
JUDGES.register("rubric", "safepeft.audit.judges.rubric:RubricJudge")
