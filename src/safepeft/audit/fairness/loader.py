"""Load BBQ items: a folder of nyu-mll/BBQ jsonl files, one jsonl file, or a Hugging Face dataset id.

Only the 9 base categories are scored; the intersectional files (Race_x_gender, Race_x_SES) are skipped and
reported. A hub id may name a config after '@' (``oskarvanderwal/bbq@All``); the 'test' split is used when there
is one, otherwise every split.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safepeft.audit.fairness.items import INTERSECTIONAL, BBQItem, item_from_record
from safepeft.errors import DataError, missing_dependency


def items_from_records(records: Iterable[Mapping[str, Any]], where: str) -> tuple[list[BBQItem], list[str]]:
    """Validated items plus the intersectional categories that were skipped."""
    items: list[BBQItem] = []
    skipped: set[str] = set()
    for index, record in enumerate(records):
        if str(record.get("category", "")) in INTERSECTIONAL:
            skipped.add(str(record["category"]))
            continue
        items.append(item_from_record(record, f"{where}:{index + 1}"))
    return items, sorted(skipped)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number} is not valid JSON ({exc.msg}).",
                                "Expected one object per line.") from exc
    return records


def load_bbq(source: str) -> tuple[list[BBQItem], dict[str, Any]]:
    """Items from a jsonl folder/file or a hub id, plus provenance for results.json params."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError(f"No *.jsonl files in {path}.", "Point --suite bbq:DIR to nyu-mll/BBQ's data/ folder.")
        items: list[BBQItem] = []
        skipped: list[str] = []
        for file in files:
            found, skip = items_from_records(read_jsonl(file), file.name)
            items += found
            skipped += skip
        return items, {"source": str(path), "files": [f.name for f in files], "skipped": sorted(set(skipped))}
    if path.is_file():
        items, skipped = items_from_records(read_jsonl(path), path.name)
        return items, {"source": str(path), "files": [path.name], "skipped": skipped}
    if "/" in source and not source.startswith((".", "/", "~")):
        return _load_hub(source)
    raise DataError(f"BBQ source {source!r} is neither a folder, a jsonl file nor a hub id.",
                    "Use --suite bbq:PATH_TO_BBQ_DATA or --suite bbq:OWNER/DATASET[@CONFIG].")


def _load_hub(source: str) -> tuple[list[BBQItem], dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise missing_dependency("datasets", "Loading BBQ from the Hugging Face hub") from exc
    name, _, config = source.partition("@")
    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "cannot load this id"
        raise DataError(
            f"Could not load BBQ dataset {source!r} from the hub ({exc}).",
            "Check the id (and '@config'), your network or HF_HUB_OFFLINE, or pass a local folder.",
        ) from exc
    splits = [loaded["test"]] if "test" in loaded else [loaded[s] for s in loaded]
    items: list[BBQItem] = []
    skipped: list[str] = []
    for split in splits:
        found, skip = items_from_records(split, source)
        items += found
        skipped += skip
    return items, {"source": source, "skipped": sorted(set(skipped))}


def select(items: list[BBQItem], per_category: int | None, limit: int | None, seed: int) -> list[BBQItem]:
    """A seeded subset that keeps every dimension and the four condition x polarity cells balanced.

    Within a dimension the items are shuffled and taken round-robin over the cells; ``limit`` then alternates
    ambiguous and disambiguated items (``--limit 8`` gives 4 + 4), each taken round-robin over dimensions, so a small
    limit still covers all of them and both bias scores get items.
    """
    rng = random.Random(seed)
    by_dimension: dict[str, list[BBQItem]] = defaultdict(list)
    for item in items:
        by_dimension[item.dimension].append(item)
    ordered = {d: _interleave(group, rng, lambda it: (it.condition, it.polarity))
               for d, group in sorted(by_dimension.items())}
    if per_category is not None:
        ordered = {d: group[:per_category] for d, group in ordered.items()}
    conditions = sorted({item.condition for item in items})
    per_condition = [_round_robin([[it for it in group if it.condition == c] for group in ordered.values()])
                     for c in conditions]
    chosen = _round_robin(per_condition)
    if limit is not None:
        chosen = chosen[:limit]
    keep = {id(item) for item in chosen}
    return [item for item in items if id(item) in keep]


def _interleave(items: list[BBQItem], rng: random.Random, key) -> list[BBQItem]:
    cells: dict[Any, list[BBQItem]] = defaultdict(list)
    for item in items:
        cells[key(item)].append(item)
    for name in sorted(cells):
        rng.shuffle(cells[name])
    return _round_robin([cells[name] for name in sorted(cells)])


def _round_robin(groups: list[list[BBQItem]]) -> list[BBQItem]:
    out: list[BBQItem] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        out += [g[depth] for g in groups if depth < len(g)]
    return out
