"""Seeded subsets for fast audits: a validation/test split, then `--per-category N`, then `--limit N`, keeping the
suite's own order.

The split hashes each item's id, not a seeded draw: an item is in the validation or the test part whatever the seed,
the limit or the other items of the suite, so hyper-parameters chosen on validation items are never scored on them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar


class _HasCategory(Protocol):
    id: str
    category: str


T = TypeVar("T", bound=_HasCategory)


SPLITS = ("all", "validation", "test")


def in_validation(item_id: str, share: float) -> bool:
    """Whether an item belongs to the validation part: the first 8 bytes of SHA-256(id) as a fraction < share."""
    fraction = int.from_bytes(hashlib.sha256(item_id.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return fraction < share


def split_items(items: Sequence[T], split: str, share: float) -> list[T]:
    """The items of one part (``validation``: a ``share`` of them by id hash, ``test``: the rest, ``all``)."""
    if split == "all":
        return list(items)
    wanted = split == "validation"
    return [item for item in items if in_validation(item.id, share) == wanted]


def select_items(items: Sequence[T], per_category: int | None, limit: int | None, seed: int,
                 split: str = "all", share: float = 0.3) -> list[T]:
    """The ``split`` part, then at most ``per_category`` items per category, then at most ``limit`` overall.

    Each category draws with its own RNG seeded by (seed, category), so adding or removing items of one category
    never changes which items another category keeps.
    """
    items = split_items(items, split, share)
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
