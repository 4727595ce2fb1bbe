"""How many released BBQ items the template expander rebuilds exactly: ``python -m safepeft.audit.fairness.reproduce``.

An item counts as reproduced when some rebuilt item has the same category, template id, polarity, context
condition, context, question, pair of group answers and correct answer. The 'unknown' wording and the answer order
are left out of the match: BBQ drew both at random, unseeded, so no expander can regenerate them. The stricter
``tagged`` count also requires the same group tags (answer_info), stereotyped groups, subcategory, version and
source note.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safepeft.audit.fairness.loader import read_jsonl
from safepeft.audit.fairness.templates import expand_templates, template_categories


def item_key(record: Mapping[str, Any]) -> tuple:
    info = record["answer_info"]
    unknown = next(i for i in range(3) if info[f"ans{i}"][1] == "unknown")
    groups = frozenset(record[f"ans{i}"] for i in range(3) if i != unknown)
    correct = "<unknown>" if record["label"] == unknown else record[f"ans{record['label']}"]
    return (record["category"], str(record["question_index"]), record["question_polarity"],
            record["context_condition"], record["context"], record["question"], groups, correct)


def tag_key(record: Mapping[str, Any]) -> tuple:
    info = record["answer_info"]
    tags = frozenset((record[f"ans{i}"], tuple(info[f"ans{i}"])) for i in range(3) if info[f"ans{i}"][1] != "unknown")
    meta = record["additional_metadata"]
    return tags, tuple(meta["stereotyped_groups"]), meta["subcategory"], meta["version"], meta["source"]


def reproduction(templates_dir: str | Path, data_dir: str | Path) -> dict[str, dict[str, int]]:
    """Per category with both a template file and a released jsonl file: total, reproduced and tagged counts."""
    data_dir = Path(data_dir)
    categories = [c for c in template_categories(templates_dir) if (data_dir / f"{c}.jsonl").is_file()]
    rebuilt: dict[tuple, set[tuple]] = defaultdict(set)
    for record in expand_templates(templates_dir, categories, mode="all"):
        rebuilt[item_key(record)].add(tag_key(record))
    report = {}
    for category in categories:
        released = read_jsonl(data_dir / f"{category}.jsonl")
        keys = [item_key(r) for r in released]
        report[category] = {
            "total": len(released),
            "reproduced": sum(k in rebuilt for k in keys),
            "tagged": sum(tag_key(r) in rebuilt.get(k, ()) for r, k in zip(released, keys, strict=True)),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", help="BBQ templates/ folder (new_templates - *.csv, vocabulary*.csv)")
    parser.add_argument("data", help="BBQ data/ folder with the released <Category>.jsonl files")
    args = parser.parse_args(argv)
    report = reproduction(args.templates, args.data)
    total = {k: sum(r[k] for r in report.values()) for k in ("total", "reproduced", "tagged")}
    print(json.dumps({"categories": report, "all": total,
                      "share": total["reproduced"] / total["total"] if total["total"] else None}))


if __name__ == "__main__":
    main()
