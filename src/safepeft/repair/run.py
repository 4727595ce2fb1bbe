"""The repair driver: open both models' weights as streams, measure every module once, plan, write atomically."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.weights import WeightSource, open_weights
from safepeft.records.base import Spec
from safepeft.records.results import ArtifactRef
from safepeft.repair.adapter import load_lora_adapter, prepare_output, write_adapter
from safepeft.repair.alignment import measure_modules
from safepeft.repair.report import RepairReport


def repair_adapter(
    method: str,
    *,
    base: str | WeightSource,
    aligned: str | WeightSource,
    adapter: str | os.PathLike[str],
    out: str | os.PathLike[str],
    spec: Spec | dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> RepairReport:
    """Repair `adapter` with the registered `method` and write the new adapter + safepeft_repair.json to `out`.

    `base` / `aligned` are model specs (embedded, .gguf, HF dir, hub id) or already-open weight sources.
    """
    from safepeft.models.fingerprint import directory_fingerprint
    from safepeft.repair import REPAIR_METHODS

    started = time.perf_counter()
    method_cls = REPAIR_METHODS.get(method)
    spec = spec if isinstance(spec, Spec) else build_spec(method, spec or {})
    if not isinstance(spec, method_cls.spec_type):
        raise ConfigError(f"{method} needs a {method_cls.spec_type.__name__}, got {type(spec).__name__}.",
                          "Pass a dict of parameters or the method's own spec.")
    adapter_path, out = Path(adapter), Path(out)
    prepare_output(out, adapter_path, overwrite)
    lora = load_lora_adapter(adapter_path)
    with ExitStack() as stack:
        base_src = _open(base, stack)
        aligned_src = _open(aligned, stack)
        base_fp, aligned_fp = getattr(base_src, "fingerprint", None), getattr(aligned_src, "fingerprint", None)
        if base_fp is not None and base_fp == aligned_fp:
            raise IncompatibleArtifactError(
                f"--base and --aligned are the same weights ({base_fp}).",
                "Pass the unaligned base and the safety-aligned model (e.g. the output of `safepeft align`).",
            )
        alignments = measure_modules(lora, base_src, aligned_src, progress)
    plan = method_cls().plan(alignments, lora, spec)
    report = RepairReport(
        method=method,
        params=spec.model_dump(),
        base=ArtifactRef(spec=_spec_name(base), fingerprint=base_fp),
        aligned=ArtifactRef(spec=_spec_name(aligned), fingerprint=aligned_fp),
        adapter=ArtifactRef(spec=str(adapter_path), fingerprint=directory_fingerprint(adapter_path)),
        modules=plan.modules,
        summary=plan.summary,
        provenance=_provenance(time.perf_counter() - started),
    )
    write_adapter(out, lora, plan.tensors, plan.config, report.model_dump_json(indent=2))
    return report


def build_spec(method: str, params: dict[str, Any]) -> Spec:
    """Validate a method's parameters, turning pydantic's report into one clear ConfigError."""
    from pydantic import ValidationError

    from safepeft.repair import REPAIR_METHODS

    try:
        return REPAIR_METHODS.get(method).spec_type(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Invalid {field} {first.get('input')!r} for {method}: {first['msg']}.",
                          f"See `safepeft repair {method} --help`.") from exc


def _open(source: str | WeightSource, stack: ExitStack) -> WeightSource:
    if isinstance(source, str):
        return stack.enter_context(open_weights(source))
    return source


def _spec_name(source: str | WeightSource) -> str:
    return source if isinstance(source, str) else str(getattr(source, "description", type(source).__name__))


def _provenance(wall_s: float) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("safepeft", "torch", "peft", "safetensors"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {"wall_s": round(wall_s, 3), "created": datetime.now(timezone.utc).isoformat(), "versions": versions}
