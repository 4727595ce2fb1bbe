"""E-DIEM: the dimension-insensitive Euclidean metric with an empirical centre and spread (SPLoRA, methods.md §2).

DIEM (Tessari et al.) centres a Euclidean distance by the expected distance of random pairs of the same dimension and
scales it by that distance's spread, so 0 means "as far apart as typical" and negative means "closer than typical"
whatever the dimension. E-DIEM estimates centre and spread from a reference set S of observed distances instead:

    E-DIEM(d) = (d − centre(S)) / spread(S)

The official SPLoRA code passes 50 copies of the pair being scored as S, so centre = d and spread = 0 and the score is
rounding noise (methods.md §2.6). Here S is a real reference set: the distances of the other modules of the same
shape in the same adapter (`reference="shape"`, default; distance grows like √(d_out·d_in), so only same-shape
modules are comparable), or all modules (`reference="all"`). centre/spread are median/IQR (default, robust to the few
outliers we want to find) or mean/std (the plain variant). The official IQR variant also subtracts a difference of
25th-percentile entries of the two matrices; that term is not part of the metric's definition and is omitted.

Properties (tested): 0 for a distance equal to the reference median, negative when closer, positive when farther;
invariant to a common rescaling and a common shift of all distances in a reference set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from safepeft.errors import ConfigError

Statistic = Literal["median-iqr", "mean-std"]


@dataclass(frozen=True)
class ReferenceStats:
    """Centre and spread of one reference set."""

    centre: float
    spread: float
    size: int


def reference_stats(distances: torch.Tensor, statistic: Statistic = "median-iqr") -> ReferenceStats:
    """Centre and spread of a 1-D set of distances (float64)."""
    values = distances.double().flatten()
    if values.numel() == 0:
        raise ConfigError("E-DIEM needs a non-empty reference set.", "Target at least two modules.")
    if statistic == "median-iqr":
        q1, median, q3 = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
        return ReferenceStats(median, q3 - q1, values.numel())
    if statistic == "mean-std":
        spread = float(values.std()) if values.numel() > 1 else 0.0
        return ReferenceStats(float(values.mean()), spread, values.numel())
    raise ConfigError(f"Unknown E-DIEM statistic {statistic!r}.", "Use median-iqr or mean-std.")


def ediem(distance: float, stats: ReferenceStats) -> float:
    """(d − centre)/spread for one distance against its reference set."""
    return (distance - stats.centre) / stats.spread


def ediem_scores(
    distances: Mapping[str, float], groups: Mapping[str, str], statistic: Statistic = "median-iqr"
) -> tuple[dict[str, float], dict[str, ReferenceStats]]:
    """Score every named distance against the reference set of its group; also return each group's stats."""
    members: dict[str, list[str]] = {}
    for name in distances:
        members.setdefault(groups[name], []).append(name)
    scores: dict[str, float] = {}
    stats_by_group: dict[str, ReferenceStats] = {}
    for group, names in sorted(members.items()):
        stats = reference_stats(torch.tensor([distances[n] for n in names], dtype=torch.float64), statistic)
        if not stats.spread > 0.0:
            raise ConfigError(
                f"The E-DIEM reference set {group!r} has no spread ({stats.size} module(s), all at distance "
                f"{stats.centre:.4g}), so scores would be 0/0.",
                "Use --reference all, target more modules, or use SafeLoRA for this adapter.",
            )
        stats_by_group[group] = stats
        scores.update({n: ediem(distances[n], stats) for n in names})
    return scores, stats_by_group
