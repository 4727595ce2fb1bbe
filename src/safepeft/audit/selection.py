"""Seeded subsets for fast audits: `--per-category N` then `--limit N`, keeping the suite's own order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar


class _HasCategory(Protocol):
    category: str


T = TypeVar("T", bound=_HasCategory)


def select_items(items: Sequence[T], per_category: int | None, limit: int | None, seed: int) -> list[T]:
    """At most ``per_category`` items per category, then at most ``limit`` overall.

    Each category draws with its own RNG seeded by (seed, category), so adding or removing items of one category
    never changes which items another category keeps.
    """
    keep = list(range(len(items)))
    if per_category is not None:
        groups: dict[str, list[int]] = {}
        for index in keep:
            groups.setdefault(items[index].category, []).append(index)
        keep = []
        for category, members in groups.items():
            chosen = members if len(members) <= per_category else random.Random(f"{seed}:{category}").sample(
                members, per_category
            )
            keep.extend(chosen)
        keep.sort()
    if limit is not None and len(keep) > limit:
        keep = sorted(random.Random(f"{seed}:limit").sample(keep, limit))
    return [items[index] for index in keep]
