"""Studies: one YAML declares models x fine-tunes x repairs x quantization x guards x audit; it expands to a DAG of
content-keyed steps that run locally or on Ray, resume after a kill, and end in one report.

Layer 3: step kinds call the stage libraries (finetune, audit, repair, ...) and the report.
"""

from __future__ import annotations

from safepeft.study.runner import RunSummary, retry_step, run_study, study_status
from safepeft.study.spec import StudySpec, load_study

__all__ = ["RunSummary", "StudySpec", "load_study", "retry_step", "run_study", "study_status"]
