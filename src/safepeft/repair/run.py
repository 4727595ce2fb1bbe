"""The repair driver: open both models' weights as streams, measure every module once, plan, write atomically."""

from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.weights import OnDevice, WeightSource, open_weights, resolve_device
from safepeft.records.base import Spec
from safepeft.records.results import ArtifactRef
from safepeft.repair.adapter import load_lora_adapter, prepare_output, write_adapter
from safepeft.repair.alignment import measure_modules
from safepeft.repair.report import RepairReport

TRAIN_RECORD = "safepeft_train.json"
"""Written into the adapter by `safepeft train` (finetune/provenance.py, which this L2 package may not import)."""


class RepairWarning(UserWarning):
    """An input or choice a repair accepts but that is probably a mistake (the CLI prints it as one line)."""


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
    inputs: dict[str, Any] | None = None,
    device: str = "auto",
) -> RepairReport:
    """Repair `adapter` with the registered `method` and write the new adapter (or model) + safepeft_repair.json.

    `base` / `aligned` are model specs (embedded, .gguf, HF dir, hub id) or already-open weight sources. `inputs`
    holds the extra inputs a method declares in its `inputs` class attribute (e.g. SafeMERGE's safety_adapter).
    `device` (auto, cpu, cuda, cuda:N) is where each module's math runs; tensors come back to the CPU to be written.
    """
    from safepeft.models.fingerprint import directory_fingerprint
    from safepeft.repair import REPAIR_METHODS
    from safepeft.repair.base import RepairJob, RepairOutcome, WeightRepair

    started = time.perf_counter()
    device = repair_device(device)
    method_cls = REPAIR_METHODS.get(method)
    spec = spec if isinstance(spec, Spec) else build_spec(method, spec or {})
    if not isinstance(spec, method_cls.spec_class):
        raise ConfigError(f"{method} needs a {method_cls.spec_class.__name__}, got {type(spec).__name__}.",
                          "Pass a dict of parameters or the method's own spec.")
    adapter_path, out = Path(adapter), Path(out)
    prepare_output(out, adapter_path, overwrite)
    lora = load_lora_adapter(adapter_path)
    extras = _method_inputs(method, method_cls, inputs or {})
    with ExitStack() as stack:
        base_src = _open(base, stack, device)
        aligned_src = _open(aligned, stack, device)
        base_fp, aligned_fp = getattr(base_src, "fingerprint", None), getattr(aligned_src, "fingerprint", None)
        if base_fp is not None and base_fp == aligned_fp:
            raise IncompatibleArtifactError(
                f"--base and --aligned are the same weights ({base_fp}).",
                "Pass the unaligned base and the safety-aligned model (e.g. the output of `safepeft align`).",
            )
        refs = {"base": ArtifactRef(spec=_spec_name(base), fingerprint=base_fp),
                "aligned": ArtifactRef(spec=_spec_name(aligned), fingerprint=aligned_fp),
                "adapter": ArtifactRef(spec=str(adapter_path), fingerprint=directory_fingerprint(adapter_path))}
        trained_on = None
        if getattr(method_cls, "checks_provenance", False):
            trained_on = check_provenance(adapter_path, _spec_name(aligned), aligned_fp, base_fp,
                                          bool(getattr(spec, "strict", False)))
        if issubclass(method_cls, WeightRepair):
            reports: list[RepairReport] = []

            def record(outcome: RepairOutcome) -> str:
                reports.append(RepairReport(method=method, params=spec.model_dump(), **refs, modules=outcome.modules,
                                            summary=outcome.summary, output=outcome.output,
                                            provenance=_provenance(time.perf_counter() - started), device=device))
                return reports[-1].model_dump_json(indent=2)

            job = RepairJob(base_src, aligned_src, lora, out, _spec_name(base), _spec_name(aligned),
                            aligned if isinstance(aligned, str) else None, extras, progress, device)
            method_cls().run(job, spec, record)
            return reports[-1]
        alignments = measure_modules(lora, base_src, aligned_src, progress)
    plan = method_cls().plan(alignments, lora, spec, **extras)
    provenance = _provenance(time.perf_counter() - started)
    if trained_on is not None:
        provenance["adapter_trained_on"] = trained_on
    report = RepairReport(
        method=method,
        params=spec.model_dump(),
        **refs,
        modules=plan.modules,
        summary=plan.summary,
        provenance=provenance,
        device=device,
    )
    write_adapter(out, lora, plan.tensors, plan.config, report.model_dump_json(indent=2))
    return report


def _method_inputs(method: str, method_cls: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The extra inputs the method declares, checked and prepared (e.g. an adapter path read into memory)."""
    needed = tuple(getattr(method_cls, "inputs", ()))
    optional = tuple(getattr(method_cls, "optional_inputs", ()))
    unknown = sorted(set(given) - set(needed) - set(optional))
    if unknown:
        raise ConfigError(f"{method} takes no input {', '.join(unknown)}.",
                          f"Its extra inputs are: {', '.join(needed + optional) or 'none'}.")
    missing = [name for name in needed if given.get(name) is None]
    if missing:
        raise ConfigError(f"{method} needs the input {', '.join(missing)}.",
                          f"See `safepeft repair {method} --help`.")
    prepare = getattr(method_cls, "prepare_inputs", None)
    return prepare(given) if prepare is not None else dict(given)


def build_spec(method: str, params: dict[str, Any]) -> Spec:
    """Validate a method's parameters, turning pydantic's report into one clear ConfigError."""
    from pydantic import ValidationError

    from safepeft.repair import REPAIR_METHODS

    try:
        return REPAIR_METHODS.get(method).spec_class(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Invalid {field} {first.get('input')!r} for {method}: {first['msg']}.",
                          f"See `safepeft repair {method} --help`.") from exc


def repair_device(device: str) -> str:
    """The device a repair runs on: `auto` resolved once (cuda when torch sees it, else cpu), a named one checked."""
    resolved = resolve_device(device)
    if resolved == "mps":
        raise ConfigError("--device mps: repairs sum norms and Gram traces in float64, which MPS does not support.",
                          "Use --device cpu (or cuda on a machine with a GPU).")
    return resolved


def _open(source: str | WeightSource, stack: ExitStack, device: str) -> WeightSource:
    """The source, read onto `device` one tensor at a time (always wrapped: the CPU path is the same code)."""
    if isinstance(source, str):
        source = stack.enter_context(open_weights(source))
    return OnDevice(source, device)


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


def check_provenance(adapter: Path, aligned: str, aligned_fp: str | None, base_fp: str | None,
                     strict: bool) -> dict[str, Any]:
    """Compare the model named in the adapter's safepeft_train.json with --aligned: warn, or refuse when strict.

    SafeLoRA and SPLoRA measure the adapter against W_aligned − W_base, which only means something for an adapter
    fine-tuned from the aligned model. Returns what was found, for safepeft_repair.json.
    """
    record_file = adapter / TRAIN_RECORD
    trained: dict[str, Any] = {}
    if record_file.is_file():
        try:
            trained = dict(json.loads(record_file.read_text(encoding="utf-8")).get("base_model") or {})
        except (ValueError, AttributeError, TypeError):
            trained = {}  # unreadable counts as missing: reported below
    fingerprint = trained.get("fingerprint")
    found = {"spec": trained.get("spec"), "fingerprint": fingerprint,
             "matches_aligned": None if fingerprint is None or aligned_fp is None else fingerprint == aligned_fp}
    if found["matches_aligned"]:
        return found
    if fingerprint is None:
        problem = (f"The adapter {adapter} has no readable {TRAIN_RECORD} naming the model it was trained on, so "
                   f"its provenance cannot be checked against --aligned {aligned}.")
        fix = "Repair an adapter written by `safepeft train` on the --aligned model"
    elif aligned_fp is None:
        problem = f"--aligned {aligned} has no fingerprint, so the adapter's provenance cannot be checked."
        fix = "Pass --aligned as a model spec (directory, .gguf, hub id)"
    else:
        which = " (the --base model)" if fingerprint == base_fp else ""
        problem = (f"The adapter {adapter} was trained on {trained.get('spec')!r}{which} (fingerprint {fingerprint}), "
                   f"not on --aligned {aligned} (fingerprint {aligned_fp}); the repair assumes they belong together.")
        fix = "Pass the model the adapter was fine-tuned from as --aligned, or train the adapter on the aligned model"
    if strict:
        raise IncompatibleArtifactError(problem, f"{fix}, or drop --strict to repair anyway.")
    warnings.warn(f"{problem} {fix} (--strict makes this an error).", RepairWarning, stacklevel=3)
    return found
