"""The suite registry: `--suite NAME[:SOURCE]` names an entry here. One small module per suite.

Entries are lazy ``"module:attr"`` strings, so a suite's loader (and any optional dependency) is imported only when
the suite is used. Dataset loaders read a local path (file or directory) or, when online, a Hugging Face hub id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.audit.base import Suite

SUITES: Registry[type[Suite]] = Registry("suite", "safepeft list suites", base="safepeft.audit.base:Suite")

# Built-in prompt sets shipped with safepeft (no download).
SUITES.register("builtin", "safepeft.audit.suites.builtin:BuiltinHarmful")
SUITES.register("builtin-benign", "safepeft.audit.suites.builtin:BuiltinBenign")
# Public harmful-request benchmarks (safety kind).
SUITES.register("advbench", "safepeft.audit.suites.advbench:AdvBench")
SUITES.register("ailuminate", "safepeft.audit.suites.ailuminate:AILuminate")
SUITES.register("do-not-answer", "safepeft.audit.suites.do_not_answer:DoNotAnswer")
SUITES.register("harmbench", "safepeft.audit.suites.harmbench:HarmBench")
SUITES.register("hex-phi", "safepeft.audit.suites.hex_phi:HExPHI")
SUITES.register("jailbreakbench", "safepeft.audit.suites.jailbreakbench:JailbreakBenchHarmful")
SUITES.register("strongreject", "safepeft.audit.suites.strongreject:StrongREJECT")
SUITES.register("xstest-unsafe", "safepeft.audit.suites.xstest:XSTestUnsafe")
# Benign look-alikes (over-refusal kind).
SUITES.register("jailbreakbench-benign", "safepeft.audit.suites.jailbreakbench:JailbreakBenchBenign")
SUITES.register("xstest", "safepeft.audit.suites.xstest:XSTestSafe")
# Your own prompts (`--kind harmful|benign` picks safety or over-refusal metrics).
SUITES.register("prompts", "safepeft.audit.suites.prompts:Prompts")
# Task utility (exact match on the final number; the judge is not used).
SUITES.register("arithmetic", "safepeft.audit.suites.utility:Arithmetic")
SUITES.register("gsm8k", "safepeft.audit.suites.utility:GSM8K")
# lm-evaluation-harness tasks, scored by lm-eval's own metrics on the audited model (`lmeval` extra).
SUITES.register("lm-eval", "safepeft.audit.lmeval.suite:LMEvalSuite")
# BBQ fairness (log-likelihood multiple choice; the judge is not used).
SUITES.register("bbq", "safepeft.audit.fairness.suite:BBQSuite")
SUITES.register("bbq-templates", "safepeft.audit.fairness.suite:BBQTemplatesSuite")
SUITES.register("bbq-builtin", "safepeft.audit.fairness.suite:BBQBuiltinSuite")
