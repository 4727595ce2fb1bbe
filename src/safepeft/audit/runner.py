"""The audit runner: suites x one Generator x one judge -> results.json.

The runner knows nothing about individual suites, models or guards. Its caller composes the Generator (model or
endpoint, optional guardrail wrapper, ``CachedGenerator`` over the run store) and passes it in; the runner wraps
the judge in the same store (``CachedJudge``), runs each suite and rewrites ``results.json`` atomically after
every suite, so a killed audit keeps what finished and a re-run recomputes nothing that is stored.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from safepeft import progress
from safepeft.audit.base import AuditOptions, Suite, parse_suite_arg
from safepeft.audit.judge_error import COMPLIED_RATES, apply_judge_error, judge_counts
from safepeft.audit.judges.base import Judge
from safepeft.audit.judges.cached import CachedJudge
from safepeft.audit.suites import SUITES
from safepeft.errors import ConfigError
from safepeft.models.protocol import Generator
from safepeft.records.results import ArtifactRef, AuditResults, SuiteJudge
from safepeft.store.sqlite import RunStore

RESULTS_FILE = "results.json"


def build_suite(text: str) -> Suite:
    """`NAME[:SOURCE]` -> a suite instance (the registry name is kept on it for results.json)."""
    name, source = parse_suite_arg(text)
    suite_class = SUITES.get(name)
    return suite_class(source, name=name)


def build_suites(texts: Sequence[str]) -> list[Suite]:
    """All suites of one audit; two suites may not produce the same results.json key."""
    suites = [build_suite(text) for text in texts]
    seen: dict[str, str] = {}
    for text, suite in zip(texts, suites, strict=True):
        if suite.result_name in seen:
            raise ConfigError(
                f"--suite {text!r} and --suite {seen[suite.result_name]!r} would both be stored as "
                f"{suite.result_name!r}.", "Audit one source per suite name per run (use another --out).",
            )
        seen[suite.result_name] = text
    return suites


def run_audit(
    generator: Generator,
    suites: Sequence[Suite],
    judge: Judge | None,
    options: AuditOptions,
    *,
    model: ArtifactRef,
    adapter: ArtifactRef | None = None,
    guard: ArtifactRef | None = None,
    out_dir: str | Path | None = None,
    store: RunStore | None = None,
    provenance: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> AuditResults:
    """Run every suite and return the results; with ``out_dir`` also write ``out_dir/results.json``."""
    active: Any = judge
    if judge is not None and store is not None:
        active = CachedJudge(judge, store, show_progress=show_progress)
    results = AuditResults(
        model=model, adapter=adapter, judge=judge.ref() if judge is not None else None, guard=guard,
        provenance={**_provenance(options), **(provenance or {})},
    )
    started = time.time()
    for suite in suites:
        began = time.perf_counter()
        with progress.scope(suite.result_name):  # bars say which suite they generate or judge for
            result = suite.run(generator, active, options)
        result.params.setdefault("seconds", round(time.perf_counter() - began, 3))
        if judge is not None and any(name in result.metrics for name in COMPLIED_RATES):
            # Its rates count the judge's positive verdicts: say whose, and what that verdict means.
            result.judge = SuiteJudge(spec=judge.name, measures=judge.measures)
        results.suites[suite.result_name] = result
        # Judge error in every rate: corrected estimates from the judge's measured sensitivity and specificity.
        apply_judge_error(results, judge_counts(judge) if judge is not None else None,
                          n_resamples=options.bootstrap, seed=options.seed)
        results.provenance["wall_seconds"] = round(time.time() - started, 3)
        if out_dir is not None:
            results.write(Path(out_dir) / RESULTS_FILE)
    return results


def _provenance(options: AuditOptions) -> dict[str, Any]:
    versions = {}
    for package in ("safepeft", "torch", "transformers", "peft", "scipy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"versions": versions, "options": options.model_dump(mode="json"), "python": sys.version.split()[0],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
