"""STUDY.yaml: base models x fine-tune variants x repairs x quantization x guards, and one audit for all.

Every key is validated (unknown keys are errors that name their path, e.g. ``finetune[0].parms``); hyper-parameters
of stages are passed through as ``params`` and validated by the stage's step kind before anything runs.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from safepeft.audit.base import AuditOptions
from safepeft.errors import ConfigError
from safepeft.finetune.contaminate import ContaminateSpec
from safepeft.models.target_spec import TargetOptions
from safepeft.records.base import Spec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
STAGES = ("align", "contaminate", "train", "repair", "quantize", "audit", "select")
"""Step kinds in pipeline order."""
Target = Literal["base", "aligned", "finetuned", "repaired"]


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, '_', '-', '.'; no spaces or '/')")
    return value


class AlignSpec(Spec):
    """How to build the aligned reference with `safepeft align`."""

    data: str | None = None
    """Safety-tuning data (path or hub id); None uses the built-in set."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyper-parameters of `safepeft align` (e.g. max_steps, learning_rate)."""


class ModelEntry(Spec):
    """One base model of the study."""

    name: str
    """Short name used in variant names."""
    model: str
    """Model spec: `embedded`, a .gguf file, an HF directory or a hub id."""
    aligned: str | None = None
    """An existing aligned reference of this model (spec), needed by repairs."""
    align: AlignSpec | None = None
    """Build the aligned reference with `safepeft align` instead (mutually exclusive with `aligned`)."""

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _one_reference(self) -> ModelEntry:
        if self.aligned is not None and self.align is not None:
            raise ValueError("give either `aligned` (an existing model) or `align` (build one), not both")
        return self


class FinetuneEntry(Spec):
    """A fine-tune variant: a method trained on data (optionally a grid of hyper-parameters), or an adapter."""

    name: str
    """Short name used in variant names (grid values are appended)."""
    method: str | None = None
    """Fine-tuning method (`safepeft list methods`)."""
    data: str | None = None
    """Training data: `builtin:NAME`, a file or an HF dataset id."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyper-parameters of the trainer and the method (e.g. max_steps, learning_rate, r)."""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """Hyper-parameters to sweep: one variant per combination, merged over `params`."""
    adapter: str | None = None
    """An existing adapter directory or hub id, audited (and repaired) instead of training one."""
    contaminate: ContaminateSpec | None = None
    """Mix a share of harmful requests with compliant answers, generated at run time by the unaligned base model,
    into `data` (the contaminated fine-tune of the efficacy protocol)."""
    served_adapter: str | None = None
    """With `target.base_url`: the name the server serves `adapter` under (vLLM --lora-modules NAME=PATH); the
    variant is audited there, and `adapter` is the directory it declares to serve (fingerprinted, never loaded)."""
    start_from: Literal["aligned", "base"] = "aligned"
    """Train on the model's aligned reference when it has one (the SafeLoRA setting), or on the base."""
    models: list[str] | None = None
    """Only for these model names (default: every model)."""

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _trained_or_given(self) -> FinetuneEntry:
        if self.adapter is not None and (self.method or self.data or self.params or self.grid or self.contaminate):
            raise ValueError("an `adapter` entry takes no method, data, params, grid or contaminate")
        if self.adapter is None and not (self.method and self.data):
            raise ValueError("give `method` and `data` to train, or an existing `adapter`")
        if self.served_adapter is not None and self.adapter is None:
            raise ValueError("`served_adapter` names a served copy of `adapter`: give the adapter directory too")
        if any(not values for values in self.grid.values()):
            raise ValueError("every grid key needs at least one value")
        return self

    def expand(self) -> list[tuple[str, dict[str, Any]]]:
        """(variant name, params) for every grid combination; a single variant without a grid."""
        return expand_grid(self.name, self.params, self.grid)


def expand_grid(name: str, params: dict[str, Any], grid: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(``name[k=v,...]``, params) for every combination of ``grid`` merged over ``params``; (name, params) alone
    without a grid."""
    if not grid:
        return [(name, dict(params))]
    keys = sorted(grid)
    variants = []
    for values in itertools.product(*(grid[k] for k in keys)):
        suffix = ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        variants.append((f"{name}[{suffix}]", {**params, **dict(zip(keys, values, strict=True))}))
    return variants


class RepairEntry(Spec):
    """A post-hoc repair of every LoRA adapter, or of those of `finetunes` (SafeLoRA, SPLoRA, RESTA, SafeMERGE,
    Safe Delta)."""

    method: str
    """Repair method (`safepeft list repairs`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Its options (e.g. mode, tau, k)."""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """Hyper-parameters to sweep (e.g. `tau: [0.3, 0.5, 0.7]`): one candidate per combination. With `efficacy`, one
    candidate is chosen on the validation split; without it, every candidate is a variant."""
    name: str | None = None
    """Name in variant names (default: the method)."""
    finetunes: list[str] | None = None
    """Only the fine-tune entries with these names (default: every fine-tune whose adapter is a LoRA, SaLoRA's
    portable LoRA included)."""

    @property
    def label(self) -> str:
        return self.name or self.method

    @model_validator(mode="after")
    def _grid_values(self) -> RepairEntry:
        if any(not values for values in self.grid.values()):
            raise ValueError("every grid key needs at least one value")
        return self

    def expand(self) -> list[tuple[str, dict[str, Any]]]:
        """(candidate label, params) for every grid combination."""
        return expand_grid(self.label, self.params, self.grid)


class EfficacySpec(Spec):
    """The efficacy protocol: choose each repair's hyper-parameter on a validation split of the audit items, then
    report recovery, utility kept and over-refusal change on the test split (docs/efficacy.md)."""

    validation_share: float = Field(0.3, gt=0.0, le=1.0)
    """Share of each suite's items (by item-id hash) held out for choosing hyper-parameters; the audit reports on
    the rest (1.0 only where nothing is reported, as in `safepeft repair auto`)."""
    validation_limit: int | None = Field(None, ge=1)
    """At most this many validation items per suite (candidates are many, so their audits are kept short)."""
    min_utility_kept: float = Field(0.95, ge=0.0)
    """A candidate is eligible when it keeps at least this share of the fine-tune's utility on validation items."""
    auto: bool = True
    """Also add `+auto`: the best candidate of every method, chosen the same way (`safepeft repair auto`)."""


class SchemeEntry(Spec):
    """A quantization scheme or a guard, and which variants it applies to."""

    name: str
    """Scheme (`safepeft list quantizers`) or guard (`safepeft list guards`) name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Its options."""
    apply_to: list[Target] = Field(default_factory=lambda: list[Target](["finetuned", "repaired"]))
    """Which variants get it: base, aligned, finetuned, repaired."""


class JudgeParams(Spec):
    """Where an LLM judge's model comes from (a `classifier` judge takes a judge directory as `model`)."""

    model: str | None = None
    """Judge model (local spec, or the endpoint's model with `base_url`), or a `safepeft judge train` directory."""
    base_url: str | None = None
    """OpenAI-compatible base URL serving `model`."""
    api_key_env: str | None = None
    """Environment variable holding the API key of `base_url`."""


class AuditEntry(AuditOptions):
    """The audit run on every variant: every `safepeft audit` option (``AuditOptions``, declared once there), plus
    what the command line gives as other flags."""

    suites: list[str] = Field(min_length=1)
    """Suites as on the command line (`builtin`, `bbq-builtin`, `xstest:PATH` ...)."""
    judge: str = "classifier"
    """Judge of generations (`safepeft list judges`)."""
    judge_params: JudgeParams = Field(default_factory=JudgeParams)
    """Judge options (e.g. a Llama Guard model path)."""
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = 16
    """Prompts per forward batch, or `auto` (as `safepeft audit --batch-size`)."""
    attacker_model: str | None = None
    """PAIR/TAP attacker model (None: the audited model)."""
    attack_judge_model: str | None = None
    """PAIR/TAP 1-10 rater model (None: the judge)."""


class Resources(Spec):
    """What one step of a kind needs on a Ray cluster."""

    num_cpus: float = Field(1.0, ge=0)
    """CPU cores."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs (fractions share a GPU)."""


class StudySpec(Spec):
    """A whole study. See docs/study.md for an example."""

    name: str
    """Study name (report title)."""
    models: list[ModelEntry] = Field(min_length=1)
    """Base models."""
    finetune: list[FinetuneEntry] = Field(default_factory=list)
    """Fine-tune variants, applied to every model (or to `models` of the entry)."""
    repairs: list[RepairEntry] = Field(default_factory=list)
    """Repairs applied to every trained LoRA adapter (or to the `finetunes` of the entry)."""
    quantize: list[SchemeEntry] = Field(default_factory=list)
    """Quantization schemes."""
    guards: list[SchemeEntry] = Field(default_factory=list)
    """Guardrails wrapping the model during the audit."""
    audit: AuditEntry
    """The audit of every variant."""
    target: TargetOptions = Field(default_factory=TargetOptions)
    """Where every variant runs (backend, base URL of one server for all variants, dtype, device ...), as the
    `safepeft audit` flags of the same names."""
    efficacy: EfficacySpec | None = None
    """Run the efficacy protocol over the repairs (hyper-parameters chosen on a validation split)."""
    resources: dict[str, Resources] = Field(default_factory=dict)
    """Per step kind (align, train, repair, quantize, audit): Ray resources of one step."""
    retries: int = Field(1, ge=0)
    """Extra attempts of a step that fails with an unexpected error (not for configuration errors)."""

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        for entry in self.finetune:
            unknown = set(entry.models or []) - set(names)
            if unknown:
                raise ValueError(f"finetune {entry.name!r} names unknown models {sorted(unknown)}")
        unknown_kinds = set(self.resources) - set(STAGES)
        if unknown_kinds:
            raise ValueError(f"resources for unknown step kinds {sorted(unknown_kinds)} (kinds: {', '.join(STAGES)})")
        for repair in self.repairs:
            unknown = set(repair.finetunes or []) - {e.name for e in self.finetune}
            if unknown:
                raise ValueError(f"repair {repair.label!r} names unknown finetune entries {sorted(unknown)}")
        variants = [v for e in self.finetune for v, _ in e.expand()]
        if len(set(variants)) != len(variants):
            raise ValueError("fine-tune variant names must be unique")
        if self.target.base_url is not None:
            self._check_served()
        labels = [r.label for r in self.repairs]
        if len(set(labels)) != len(labels) or (self.efficacy and self.efficacy.auto and "auto" in labels):
            raise ValueError(f"repair names must be unique (and not `auto` with efficacy), got {labels}; "
                             "give repeated methods a `name`")
        return self


    def _check_served(self) -> None:
        """With one server for all variants, every variant must be one it serves: nothing is trained or written."""
        local = [f"models[{m.name}].align" for m in self.models if m.align is not None]
        local += [f"finetune[{e.name}]" for e in self.finetune if e.served_adapter is None]
        local += ["repairs"] * bool(self.repairs) + ["quantize"] * bool(self.quantize)
        if local:
            raise ValueError(f"with target.base_url every variant is audited on that server, but {', '.join(local)} "
                             "would write local models or adapters it does not serve; give each finetune entry an "
                             "`adapter` with its `served_adapter` name, and drop align, repairs and quantize")


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a STUDY.yaml; errors name the file and each bad key path."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Study file not found: {path}.", "Pass the path of a STUDY.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text.", "Re-save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}.", "Fix the syntax there.") from None
    return parse_study(raw, str(path))


def _yaml_problem(exc: Any) -> str:
    """PyYAML's multi-line report (with a source excerpt) as one clause: what, at which line and column."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def parse_study(raw: Any, source: str = "study") -> StudySpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}.",
                          "See docs/study.md for an example.")
    try:
        return StudySpec.model_validate(_normalise(raw))
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"Invalid study {source}: {problems}.", "See docs/study.md for every key.") from exc


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Shorthands: `repairs: [none, safelora]`, `quantize: [int8]`, `guards: [refusal-classifier]`."""
    raw = dict(raw)
    for key, field in (("repairs", "method"), ("quantize", "name"), ("guards", "name")):
        if isinstance(raw.get(key), list):
            raw[key] = [{field: v} if isinstance(v, str) else v for v in raw[key] if v != "none"]
    return raw


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _all_fields() -> set[str]:
    classes: list[type[BaseModel]] = [StudySpec, ModelEntry, AlignSpec, FinetuneEntry, RepairEntry, SchemeEntry,
                                      AuditEntry, Resources, EfficacySpec, ContaminateSpec]
    return {name for cls in classes for name in cls.model_fields}


def _problem(err: Mapping[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
    where = _path(loc)
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), sorted(_all_fields()), n=1, cutoff=0.6)
        return f"{where}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] == "missing":
        return f"{where}: required key missing"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"
