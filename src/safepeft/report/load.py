"""Which results a report covers, what each variant is called, and which variant it is compared with (its base).

Inputs are ``results.json`` files or run directories. A run directory holding ``results.json`` is one variant; one
holding ``variants.json`` (written by ``safepeft study``) lists exactly the study's current variants with their
names and declared bases; any other directory is searched for ``results.json`` files (sorted).

The base of a variant is decided by the first rule that applies:

1. **declared**: ``variants.json`` ``base`` or results.json ``provenance.base_variant`` names another variant;
   a study declares the variant each one was derived from by one step (aligned <- base, fine-tune <- aligned,
   repair / quantization / guard <- fine-tune), so each delta is the effect of that one step;
2. **--base NAME** on the command line, for variants that declare nothing;
3. **lineage**: the records the stages write beside their outputs name what each artifact came from, matched to
   the other variants by fingerprint: an aligned model (``safepeft_align.json``) <- its base, a trained adapter
   (``safepeft_train.json``) <- the model it was trained on, a repaired adapter (``safepeft_repair.json``) <- the
   adapter it repaired (on the same model), a quantized model (``quantization.json``) <- its source (model, and
   the adapter merged into it);
4. **same model**: the variant of the same model (spec and fingerprint) with no adapter and no guard;
5. none: the variant is shown without deltas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError

from safepeft.errors import ConfigError, DataError
from safepeft.records import AuditResults, load_results
from safepeft.records.base import Record
from safepeft.records.efficacy import EfficacyResults
from safepeft.store.atomic import atomic_write_text

MANIFEST = "variants.json"
RESULTS = "results.json"


class ManifestEntry(Record):
    """One variant of a study."""

    name: str
    """Variant name shown in the report."""
    results: str
    """Path of its results.json, relative to the manifest's directory (or absolute)."""
    base: str | None = None
    """Name of the variant it is compared with; None for a root (e.g. the base model)."""


class Manifest(Record):
    """variants.json: the variants a study's report covers, in display order."""

    variants: list[ManifestEntry] = Field(default_factory=list)
    """Variants in display order."""


@dataclass
class Variant:
    """One audited model variant as the report sees it."""

    name: str
    path: Path
    results: AuditResults
    declared_base: str | None = None
    base: str | None = None
    base_rule: str = "none"
    notes: list[str] = field(default_factory=list)


def write_manifest(run_dir: str | Path, entries: list[ManifestEntry]) -> Path:
    """Atomically write ``variants.json`` into a run directory (used by studies)."""
    path = Path(run_dir) / MANIFEST
    atomic_write_text(path, Manifest(variants=entries).model_dump_json(indent=2))
    return path


def load_variants(inputs: list[str | Path], default_base: str | None = None) -> list[Variant]:
    """Read every input, name the variants uniquely and resolve their bases."""
    if not inputs:
        raise ConfigError("No results given.", "Pass run directories or results.json files.")
    variants: list[Variant] = []
    for item in inputs:
        variants.extend(_read_input(Path(item)))
    if not variants:
        raise DataError(f"No {RESULTS} found under {', '.join(map(str, inputs))}.",
                        "Run `safepeft audit ... --out DIR` (or `safepeft study run`) first.")
    _unique_names(variants)
    resolve_bases(variants, default_base)
    return bases_first(variants)


EFFICACY = "efficacy.json"


def load_efficacy(inputs: list[str | Path]) -> EfficacyResults | None:
    """The efficacy protocol's figures from the first input directory that has an efficacy.json (a study's)."""
    for item in inputs:
        path = Path(item) / EFFICACY
        if path.is_file():
            try:
                return EfficacyResults.model_validate_json(path.read_text(encoding="utf-8"))
            except ValidationError as exc:
                raise DataError(f"{path} is not a valid efficacy file ({exc.errors()[0]['msg']}).",
                                "Re-run the study (`safepeft study run`) to rewrite it.") from exc
    return None


def bases_first(variants: list[Variant]) -> list[Variant]:
    """Each base before the variants derived from it (depth first, input order among siblings)."""
    children: dict[str | None, list[Variant]] = {}
    for variant in variants:
        children.setdefault(variant.base, []).append(variant)
    ordered: list[Variant] = []

    def visit(variant: Variant) -> None:
        ordered.append(variant)
        for child in children.get(variant.name, []):
            visit(child)

    for root in children.get(None, []):
        visit(root)
    placed = {id(v) for v in ordered}
    return ordered + [v for v in variants if id(v) not in placed]  # only reachable through a cycle of bases


def _read_input(path: Path) -> list[Variant]:
    if path.is_file():
        return [_variant(path, None, None)]
    if not path.is_dir():
        raise DataError(f"No such results file or run directory: {path}.", "Check the path.")
    if (path / RESULTS).is_file():
        return [_variant(path / RESULTS, None, None)]
    if (path / MANIFEST).is_file():
        return [_variant(_resolve(path, e.results), e.name, e.base) for e in _read_manifest(path / MANIFEST)]
    return [_variant(found, None, None) for found in sorted(path.rglob(RESULTS))]


def _read_manifest(path: Path) -> list[ManifestEntry]:
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8"))).variants
    except (ValueError, ValidationError) as exc:
        raise DataError(f"{path} is not a valid variants manifest ({exc}).",
                        "Re-run the study that wrote it.") from exc


def _resolve(directory: Path, relative: str) -> Path:
    target = Path(relative)
    return target if target.is_absolute() else directory / target


def _variant(path: Path, name: str | None, base: str | None) -> Variant:
    results = load_results(path)
    provenance = results.provenance
    name = name or provenance.get("variant") or _name_from_path(path)
    declared = base if base is not None else provenance.get("base_variant")
    return Variant(name=str(name), path=path, results=results, declared_base=declared)


def _name_from_path(path: Path) -> str:
    parent = path.resolve().parent.name
    return parent if path.name == RESULTS and parent else path.stem


def _unique_names(variants: list[Variant]) -> None:
    counts: dict[str, int] = {}
    for variant in variants:
        counts[variant.name] = counts.get(variant.name, 0) + 1
        if counts[variant.name] > 1:
            variant.notes.append(f"renamed from {variant.name!r} (name used twice; from {variant.path})")
            variant.name = f"{variant.name}#{counts[variant.name]}"


def _model_key(results: AuditResults) -> tuple[str, str | None]:
    return (results.model.spec, results.model.fingerprint)


def resolve_bases(variants: list[Variant], default_base: str | None = None) -> None:
    """Fill ``base`` and ``base_rule`` of every variant by the rules in the module docstring."""
    names = {v.name for v in variants}
    if default_base is not None and default_base not in names:
        raise ConfigError(f"--base {default_base!r} is not one of the variants.",
                          f"Variants: {', '.join(sorted(names))}.")
    plain = {}
    for variant in variants:
        results = variant.results
        if results.adapter is None and results.guard is None:
            plain.setdefault(_model_key(results), variant.name)
    for variant in variants:
        if variant.declared_base is not None:
            if variant.declared_base in names and variant.declared_base != variant.name:
                variant.base, variant.base_rule = variant.declared_base, "declared"
            else:
                variant.notes.append(f"declared base {variant.declared_base!r} is not in this report")
            continue
        parent = None if default_base else _lineage_parent(variant, variants)
        if parent is not None:
            variant.base, variant.base_rule = parent, "lineage"
            continue
        candidate = default_base or plain.get(_model_key(variant.results))
        if candidate is not None and candidate != variant.name:
            variant.base, variant.base_rule = candidate, ("cli" if default_base else "same model")


# Records the stages write beside their outputs (file names only: report/ never imports the stages).
ALIGN_RECORD, TRAIN_RECORD, REPAIR_RECORD, QUANT_RECORD = (
    "safepeft_align.json", "safepeft_train.json", "safepeft_repair.json", "quantization.json")


def _record(spec: str | None, name: str) -> dict | None:
    """The JSON record ``name`` in the directory ``spec`` (None when absent or unreadable)."""
    if not spec:
        return None
    path = Path(spec).expanduser() / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _origin(results: AuditResults) -> tuple[str | None, str | None] | None:
    """(model fingerprint, adapter fingerprint) of the artifact this variant was made from, per its records."""
    model = results.model
    adapter = results.adapter
    if adapter is not None:
        repaired = _record(adapter.spec, REPAIR_RECORD)
        if repaired is not None and isinstance(repaired.get("adapter"), dict):
            return model.fingerprint, repaired["adapter"].get("fingerprint")
        trained = _record(adapter.spec, TRAIN_RECORD)
        if trained is not None and isinstance(trained.get("base_model"), dict):
            return trained["base_model"].get("fingerprint"), None
        return None
    quantized = _record(model.spec, QUANT_RECORD)
    if quantized is not None and isinstance(quantized.get("source"), dict):
        source = quantized["source"]
        return source.get("fingerprint"), source.get("adapter_fingerprint")
    aligned = _record(model.spec, ALIGN_RECORD)
    if aligned is not None and isinstance(aligned.get("base_model"), dict):
        return aligned["base_model"].get("fingerprint"), None
    return None


def _lineage_parent(variant: Variant, variants: list[Variant]) -> str | None:
    """The variant whose model and adapter fingerprints are this variant's recorded origin (no guard)."""
    origin = _origin(variant.results)
    if origin is None or origin[0] is None:
        return None
    for other in variants:
        results = other.results
        key = (results.model.fingerprint, None if results.adapter is None else results.adapter.fingerprint)
        if other is not variant and results.guard is None and key == origin:
            return other.name
    return None
