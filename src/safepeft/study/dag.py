"""Expand a StudySpec into a DAG of steps (align -> train -> repair -> quantize -> audit) keyed by content hashes.

A step's key hashes its kind, its parameters, the identity of its external inputs (a file's SHA-256, a model or
adapter directory's weight fingerprint, or the spec string for hub ids and built-ins) and the keys of the steps it
depends on. So an unchanged step keeps its key and is never recomputed, and changing one hyper-parameter changes
the keys of exactly that step and the steps downstream of it. Variant and step names are not part of any key:
renaming a variant recomputes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError
from safepeft.store.sqlite import request_key
from safepeft.study.spec import STAGES, FinetuneEntry, ModelEntry, RepairEntry, SchemeEntry, StudySpec

__all__ = ["STAGES", "Dag", "Step", "VariantPlan", "expand", "input_identity"]
PROMPT_METHODS = ("prompt-tuning", "p-tuning")  # virtual-token adapters: nothing to merge into the weights


@dataclass(frozen=True)
class Step:
    """One unit of work. ``deps`` maps an input role to the step producing it; ``inputs`` maps a role to an
    external artifact (model spec, data, adapter directory)."""

    name: str
    kind: str
    params: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    deps: dict[str, str] = field(default_factory=dict)
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(**data)


@dataclass(frozen=True)
class VariantPlan:
    """An audited variant: the audit step that measures it and the variant it is compared with."""

    name: str
    audit: str
    base: str | None
    target: str
    """base | aligned | finetuned | repaired (what quantization / guard entries select on)."""


@dataclass(frozen=True)
class EfficacyPlan:
    """A repaired variant of the efficacy protocol: what its recovery is measured against."""

    variant: str
    """The repaired variant (its audit is on the test split)."""
    finetuned: str
    """The fine-tuned variant it repairs."""
    aligned: str
    """The aligned reference the fine-tune started from."""
    repair: str
    """Repair label (a method name, or `auto`)."""
    select: str
    """The step that chose the candidate on the validation split."""


@dataclass
class Dag:
    steps: dict[str, Step] = field(default_factory=dict)
    """Steps in dependency order (every step after the steps it depends on)."""
    variants: list[VariantPlan] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Combinations left out, with the reason (e.g. a repair of a non-LoRA adapter)."""
    efficacy: list[EfficacyPlan] = field(default_factory=list)
    """Repaired variants of the efficacy protocol (empty without `efficacy` in the study)."""

    def add(self, step: Step) -> Step:
        if step.name in self.steps:
            raise ConfigError(f"Two study steps are named {step.name!r}.", "Give variants unique names.")
        keyed = Step(step.name, step.kind, step.params, step.inputs, step.deps, key=self._key(step))
        self.steps[step.name] = keyed
        return keyed

    def _key(self, step: Step) -> str:
        deps = {role: self.steps[name].key for role, name in sorted(step.deps.items())}
        inputs = {role: input_identity(value) for role, value in sorted(step.inputs.items())}
        return request_key("study-step", step.kind, step.params, inputs, deps)

    def add_once(self, step: Step) -> Step:
        """``add``, or the step already added under that name (shared steps such as a model's validation audit)."""
        return self.steps[step.name] if step.name in self.steps else self.add(step)

    def upstream(self, name: str) -> set[str]:
        """Names of the steps ``name`` depends on, directly or not."""
        found: set[str] = set()
        todo = list(self.steps[name].deps.values())
        while todo:
            dep = todo.pop()
            if dep not in found:
                found.add(dep)
                todo.extend(self.steps[dep].deps.values())
        return found

    def downstream(self, name: str) -> set[str]:
        """Names of the steps that depend on ``name``, directly or not."""
        found: set[str] = set()
        for step in self.steps.values():  # dependency order: one pass suffices
            if any(dep == name or dep in found for dep in step.deps.values()):
                found.add(step.name)
        return found


def input_identity(value: str) -> str:
    """Content identity of an external input: hashes for local files and directories (the embedded model is its
    GGUF file), else the spec itself (hub ids, built-in data)."""
    from safepeft.models.spec import EMBEDDED_ALIASES, embedded_gguf_path

    path = embedded_gguf_path() if value in EMBEDDED_ALIASES else Path(value).expanduser()
    if path.is_file():
        from safepeft.models.fingerprint import file_sha256

        return f"file:{file_sha256(path)}"
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            from safepeft.models.fingerprint import directory_fingerprint

            return f"weights:{directory_fingerprint(path)}"
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return f"dir:{digest.hexdigest()[:16]}"
    return f"spec:{value}"


@dataclass
class _Source:
    """Where a variant's model comes from: an external spec or a step's output, plus an optional adapter."""

    variant: str
    target: str
    model: tuple[str, str]
    """("input", spec) or ("step", step name)."""
    adapter: tuple[str, str] | None = None
    method: str | None = None
    served: str | None = None
    """The name a server serves the adapter under (`served_adapter`), audited there."""

    def roles(self) -> tuple[dict[str, str], dict[str, str]]:
        inputs: dict[str, str] = {}
        deps: dict[str, str] = {}
        for role, ref in (("model", self.model), ("adapter", self.adapter)):
            if ref is not None:
                (inputs if ref[0] == "input" else deps)[role] = ref[1]
        return inputs, deps


def expand(spec: StudySpec) -> Dag:
    """The DAG of a study: every step and every audited variant with its base (the variant one step up)."""
    dag = Dag()
    audit_params = spec.audit.model_dump(mode="json")
    if spec.efficacy is not None:  # the reported audit sees only the test part; candidates are chosen on the rest
        audit_params.update(split="test", validation_share=spec.efficacy.validation_share)
    for model in spec.models:
        root = _Source(model.name, "base", ("input", model.model))
        sources: list[tuple[_Source, str | None]] = [(root, None)]
        aligned = _aligned(dag, model)
        aligned_source = _Source(f"{model.name}+aligned", "aligned", aligned) if aligned else None
        if aligned_source is not None:
            sources.append((aligned_source, model.name))
        for entry in spec.finetune:
            if entry.models is None or model.name in entry.models:
                start = aligned_source if aligned_source and entry.start_from == "aligned" else root
                sources.extend(_finetuned(dag, spec, model, entry, start, aligned, aligned_source))
        for source, base in sources:
            _audits(dag, spec, source, base, audit_params)
    return dag


def _aligned(dag: Dag, model: ModelEntry) -> tuple[str, str] | None:
    if model.align is not None:
        step = dag.add(Step(f"align/{model.name}", "align", model.align.model_dump(mode="json"),
                            inputs={"model": model.model}))
        return ("step", step.name)
    return ("input", model.aligned) if model.aligned else None


def _finetuned(dag: Dag, spec: StudySpec, model: ModelEntry, entry: FinetuneEntry, start: _Source,
               aligned: tuple[str, str] | None, aligned_source: _Source | None) -> list[tuple[_Source, str | None]]:
    """Train (or take) each grid variant of ``entry`` on ``start``, then repair it."""
    out: list[tuple[_Source, str | None]] = []
    data: tuple[dict[str, str], dict[str, str]] = ({"data": entry.data or ""}, {})
    if entry.contaminate is not None:  # one mixed file per model, task and mix, whichever methods train on it
        params = {"contaminate": entry.contaminate.model_dump(mode="json")}
        mixed = dag.add_once(Step(f"contaminate/{model.name}/{entry.data}@{request_key(params)[:8]}", "contaminate",
                                  params, inputs={"model": model.model, "data": entry.data or ""}))
        data = ({}, {"data": mixed.name})
    repairs = _repairs_for(spec, entry)
    for name, params in entry.expand():
        variant = f"{model.name}/{name}"
        if entry.adapter is not None:
            adapter, method = ("input", entry.adapter), None  # its type is checked by the repair itself
        else:
            inputs, deps = start.roles()
            step = dag.add(Step(f"train/{variant}", "train", {"method": entry.method, "params": params},
                                inputs={**inputs, **data[0]}, deps={**deps, **data[1]}))
            adapter, method = ("step", step.name), entry.method
        trained = _Source(variant, "finetuned", start.model, adapter, method, entry.served_adapter)
        out.append((trained, start.variant))
        if not repairs:
            continue
        reason = _cannot_repair(model, method, aligned)
        if reason:
            dag.skipped.extend(f"{variant}+{repair.label}: {reason}" for repair in repairs)
            continue
        assert aligned is not None  # a missing reference is the first reason _cannot_repair gives
        if spec.efficacy is not None and aligned_source is not None:
            out.extend(_chosen_repairs(dag, spec, repairs, model, trained, aligned_source, aligned))
            continue
        for repair in repairs:
            for label, repair_params in repair.expand():
                step = _repair_step(dag, model, variant, label, repair.method, repair_params, aligned, adapter)
                out.append((_Source(f"{variant}+{label}", "repaired", start.model, ("step", step.name), method),
                            variant))
    return out


def _repair_step(dag: Dag, model: ModelEntry, variant: str, label: str, method: str, params: dict[str, Any],
                 aligned: tuple[str, str], adapter: tuple[str, str]) -> Step:
    from safepeft.repair import REPAIR_METHODS

    roles = {"base": ("input", model.model), "aligned": aligned, "adapter": adapter}
    version = REPAIR_METHODS.get(method).version
    step_params = {"method": method, "params": params} | ({"version": version} if version > 1 else {})
    return dag.add(Step(
        f"repair/{variant}+{label}", "repair", step_params,
        inputs={r: v for r, (k, v) in roles.items() if k == "input"},
        deps={r: v for r, (k, v) in roles.items() if k == "step"},
    ))


def _validation(dag: Dag, spec: StudySpec, source: _Source) -> str:
    """The validation audit of a variant (once per variant): the audit's generation suites on the validation split,
    without attacks or guards, at most `efficacy.validation_limit` items per suite."""
    assert spec.efficacy is not None
    params = spec.audit.model_dump(mode="json")
    # choosing reads harmful and utility items only: other suites would cost generations nobody reads
    params.update(split="validation", validation_share=spec.efficacy.validation_share, attacks=[],
                  suites=[s for s in params["suites"] if _suite_kind(s) in ("safety", "utility", None)])
    if spec.efficacy.validation_limit is not None:
        params["limit"] = spec.efficacy.validation_limit
    inputs, deps = source.roles()
    step = dag.add_once(Step(f"validate/{source.variant}", "audit", {"audit": params, "guard": None},
                             inputs=inputs, deps=deps))
    return step.name


def _suite_kind(spec: str) -> str | None:
    from safepeft.audit.suites import SUITES

    name = spec.split(":", 1)[0]
    return getattr(SUITES.get(name), "kind", None) if name in SUITES.names() else None


def _lazy_validation(dag: Dag, spec: StudySpec, source: _Source) -> Any:
    """The validation audit of a candidate, added to the DAG only when some choice needs it."""
    return lambda: _validation(dag, spec, source)


def _chosen_repairs(dag: Dag, spec: StudySpec, repairs: list[RepairEntry], model: ModelEntry, trained: _Source,
                    aligned_source: _Source, aligned: tuple[str, str]) -> list[tuple[_Source, str | None]]:
    """Every candidate of every repair, validated; one `select` step per repair (and `auto` over all of them)
    picks the candidate the test audit then measures."""
    assert spec.efficacy is not None and trained.adapter is not None
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for repair in repairs:
        candidates = []
        for label, params in repair.expand():
            step = _repair_step(dag, model, trained.variant, label, repair.method, params, aligned, trained.adapter)
            source = _Source(f"{trained.variant}+{label}", "repaired", trained.model, ("step", step.name))
            candidates.append({"label": label, "method": repair.method, "params": params, "repair": step.name,
                               "validation": _lazy_validation(dag, spec, source)})
        groups.append((repair.label, candidates))
    if spec.efficacy.auto and len(repairs) > 1:
        groups.append(("auto", [c for _, members in groups for c in members]))
    if any(len(candidates) > 1 for _, candidates in groups):
        references = {"finetuned": _validation(dag, spec, trained),
                      "aligned": _validation(dag, spec, aligned_source)}
    else:
        references = {}
    out: list[tuple[_Source, str | None]] = []
    for label, candidates in groups:
        # one candidate needs no choosing: no validation audit of it or of the references
        deps = dict(references) if len(candidates) > 1 else {}
        for index, candidate in enumerate(candidates):
            deps[f"candidate{index}"] = candidate["repair"]
            if len(candidates) > 1:
                deps[f"validation{index}"] = candidate["validation"]()
        step = dag.add(Step(f"select/{trained.variant}+{label}", "select",
                            {"min_utility_kept": spec.efficacy.min_utility_kept,
                             "candidates": [{k: c[k] for k in ("label", "method", "params")} for c in candidates]},
                            deps=deps))
        variant = f"{trained.variant}+{label}"
        dag.efficacy.append(EfficacyPlan(variant, trained.variant, aligned_source.variant, label, step.name))
        out.append((_Source(variant, "repaired", trained.model, ("step", step.name), trained.method), trained.variant))
    return out


def _cannot_repair(model: ModelEntry, method: str | None, aligned: tuple[str, str] | None) -> str | None:
    if aligned is None:
        return f"model {model.name!r} has no aligned reference (set `align` or `aligned`)"
    if method is not None and not writes_lora(method):
        return f"repairs edit LoRA adapters, not {method}"
    return None


def writes_lora(method: str) -> bool:
    """Whether the fine-tuning ``method`` writes a LoRA adapter (its registered ``writes``), which repairs edit:
    LoRA, and SaLoRA's portable LoRA."""
    from safepeft.finetune import FINETUNE_METHODS

    return FINETUNE_METHODS.get(method).writes == "LORA"


def _repairs_for(spec: StudySpec, entry: FinetuneEntry) -> list[RepairEntry]:
    """The repairs that apply to a fine-tune entry (a repair's ``finetunes`` names the entries it is limited to)."""
    return [r for r in spec.repairs if r.finetunes is None or entry.name in r.finetunes]


def _applies(entry: SchemeEntry, source: _Source) -> bool:
    return source.target in entry.apply_to


def _audits(dag: Dag, spec: StudySpec, source: _Source, base: str | None, audit_params: dict[str, Any]) -> None:
    """Audit the variant, its quantized versions, and each of those behind each guard that applies."""
    measured = [(source, base)]
    for scheme in spec.quantize:
        if _applies(scheme, source) and source.method in PROMPT_METHODS:
            dag.skipped.append(f"{source.variant}+{scheme.name}: quantization merges the adapter, and a "
                               f"{source.method} adapter (virtual tokens) cannot be merged")
        elif _applies(scheme, source):
            inputs, deps = source.roles()
            step = dag.add(Step(f"quantize/{source.variant}+{scheme.name}", "quantize",
                                {"scheme": scheme.name, "params": scheme.params}, inputs=inputs, deps=deps))
            measured.append((_Source(f"{source.variant}+{scheme.name}", source.target, ("step", step.name)),
                             source.variant))
    guards = [g for g in spec.guards if _applies(g, source)]
    for variant, parent in measured:
        _audit(dag, spec, variant, parent, None, audit_params)
        for guard in guards:
            _audit(dag, spec, variant, variant.variant, guard, audit_params)


def _audit(dag: Dag, spec: StudySpec, source: _Source, base: str | None, guard: SchemeEntry | None,
           audit_params: dict[str, Any]) -> None:
    name = f"{source.variant}+{guard.name}" if guard else source.variant
    inputs, deps = source.roles()
    params: dict[str, Any] = {"audit": audit_params,
                              "guard": guard.model_dump(mode="json", exclude={"apply_to"}) if guard else None}
    # Only what differs from the defaults, so a study without a `target:` keeps its step keys (and cached results).
    target = spec.target.model_dump(mode="json", exclude_defaults=True)
    params |= ({"target": target} if target else {}) | ({"served_adapter": source.served} if source.served else {})
    step = dag.add(Step(f"audit/{name}", "audit", params, inputs=inputs, deps=deps))
    dag.variants.append(VariantPlan(name, step.name, base, source.target))
