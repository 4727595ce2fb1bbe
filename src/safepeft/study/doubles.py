"""Test doubles shipped with the package: step kinds that do no ML, for exercising the study machinery (resume,
retries, Ray, subtrees) in seconds. Register them with ``kinds="safepeft.study.doubles:DOUBLE_KINDS"``.

Every double appends ``<step name>\\t<key>`` to ``run_dir/calls.log`` when it starts, so tests can count what ran.
Knobs read from a fine-tune entry's ``params`` (they reach train steps): ``sleep`` (seconds), ``fail_times`` (raise a
RuntimeError on the first N attempts: retried), ``config_error`` (raise a ConfigError: not retried).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from typing import Any

from safepeft.errors import ConfigError
from safepeft.records import ArtifactRef, AuditResults, CategoryResult, Metric, Sample, SuiteResult
from safepeft.registry import Registry
from safepeft.store.atomic import atomic_write_json
from safepeft.study.kinds import StepContext, StepKind

CALLS = "calls.log"


def _log_call(ctx: StepContext) -> None:
    line = f"{ctx.step.name}\t{ctx.step.key}\n".encode()
    fd = os.open(ctx.run_dir / CALLS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: lines from parallel workers never interleave
    finally:
        os.close(fd)


class FakeArtifact(StepKind):
    """Writes artifact.json naming its parameters and resolved inputs."""

    description = "Test double: writes a JSON artifact, no ML."

    def run(self, ctx: StepContext) -> dict[str, Any]:
        _log_call(ctx)
        knobs = ctx.params.get("params", {}) if isinstance(ctx.params.get("params"), dict) else {}
        time.sleep(float(knobs.get("sleep", 0)))
        if knobs.get("config_error"):
            raise ConfigError("Fake configuration error.", "Remove config_error from the params.")
        if ctx.attempt <= int(knobs.get("fail_times", 0)):
            raise RuntimeError(f"fake transient failure on attempt {ctx.attempt}")
        inputs = {role: ctx.input(role) for role in (*ctx.step.inputs, *ctx.dep_outputs)}
        atomic_write_json(ctx.out_dir / "artifact.json", {"step": ctx.step.name, "params": ctx.params,
                                                          "inputs": inputs})
        return {"artifact": ctx.relative(ctx.out_dir)}


class FakeAudit(StepKind):
    """Writes a results.json whose harmful rate is a deterministic function of what is audited."""

    description = "Test double: writes a small results.json, no ML."

    def run(self, ctx: StepContext) -> dict[str, Any]:
        _log_call(ctx)
        model, adapter = ctx.require("model"), ctx.input("adapter")
        guard = ctx.params.get("guard")
        seed = zlib.crc32(json.dumps([ctx.step.inputs, sorted(ctx.dep_outputs), guard]).encode())
        scores = [float((seed >> i) & 1) for i in range(16)]
        samples = [Sample(id=f"i{i}", category="S1_violent_crimes", prompt=f"fake request {i}",
                          completion=f"fake output {i}", score=score, label="complied")
                   for i, score in enumerate(scores)]
        rate = sum(scores) / len(scores)
        suite = SuiteResult(kind="safety", n=len(samples), metrics={"harmful_rate": Metric(value=rate)},
                            by_category={"S1_violent_crimes": CategoryResult(
                                n=len(samples), metrics={"harmful_rate": Metric(value=rate)})},
                            samples=samples)
        results = AuditResults(model=ArtifactRef(spec=model), adapter=ArtifactRef(spec=adapter) if adapter else None,
                               guard=ArtifactRef(spec=guard["name"]) if guard else None, suites={"fake": suite})
        path = ctx.out_dir / "results.json"
        results.write(path)
        return {"artifact": ctx.relative(path)}


DOUBLE_KINDS: Registry = Registry("step kind")
for _name in ("align", "train", "repair", "quantize"):
    DOUBLE_KINDS.register(_name, FakeArtifact())
DOUBLE_KINDS.register("audit", FakeAudit())
