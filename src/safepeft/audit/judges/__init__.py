"""The judge registry: `--judge NAME` names an entry here (see `safepeft list judges`)."""

from __future__ import annotations

from safepeft.registry import Registry

JUDGES: Registry = Registry("judge", "safepeft list judges")
JUDGES.register("refusal", "safepeft.audit.judges.refusal:RefusalJudge")
JUDGES.register("llama-guard", "safepeft.audit.judges.llama_guard:LlamaGuardJudge")
JUDGES.register("harmbench-cls", "safepeft.audit.judges.harmbench_cls:HarmBenchClassifierJudge")
JUDGES.register("rubric", "safepeft.audit.judges.rubric:RubricJudge")
