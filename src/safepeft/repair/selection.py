"""Which modules a repair acts on, from scores computed once on the pristine adapter.

Scores are always computed before anything is modified, and the selection is applied exactly once; there is no
second scoring pass that could see already-repaired weights (the PEFT port's `number`-mode bug, methods.md §1).

- `threshold`: every module whose score is on the bad side of τ (≤ τ when low is bad, ≥ τ when high is bad).
- `number`: exactly the k worst modules. Ties are broken by module name so the result is deterministic and has
  exactly k members (the official code's "≤ k-th score" rule adds every tied module).
Modules without a score (e.g. V = 0) are never selected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from safepeft.errors import ConfigError

Mode = Literal["threshold", "number"]
Worst = Literal["low", "high"]


def select_modules(
    scores: Mapping[str, float | None], mode: Mode, tau: float, k: int, worst: Worst
) -> set[str]:
    """Names of the selected modules; `worst` says which end of the score scale is bad."""
    scored = {name: score for name, score in scores.items() if score is not None}
    if mode == "threshold":
        if worst == "low":
            return {name for name, score in scored.items() if score <= tau}
        return {name for name, score in scored.items() if score >= tau}
    if mode == "number":
        if k < 1:
            raise ConfigError(f"k must be at least 1 in number mode, got {k}.", "Pass --k N with N >= 1.")
        if k > len(scored):
            raise ConfigError(
                f"k={k} but only {len(scored)} adapter modules have a score.",
                f"Pass --k {len(scored)} or less, or use --mode threshold.",
            )
        sign = 1.0 if worst == "low" else -1.0
        ranked = sorted(scored, key=lambda name: (sign * scored[name], name))
        return set(ranked[:k])
    raise ConfigError(f"Unknown selection mode {mode!r}.", "Use threshold or number.")


def check_count_or_share(k: int | float, allow_all: bool = False) -> int | float:
    """Validate ``k``: a count (an integer >= 1) or a share of the modules in (0, 1) (``(0, 1]`` with allow_all)."""
    top_ok = (k <= 1) if allow_all else (k < 1)
    if isinstance(k, bool) or (isinstance(k, int) and k < 1) or (isinstance(k, float) and not (0 < k and top_ok)):
        span = "(0, 1]" if allow_all else "strictly between 0 and 1"
        raise ValueError(f"k must be a count (an integer >= 1) or a share {span}, got {k!r}")
    return k


def module_count(k: int | float, modules: int) -> int:
    """``k`` as a number of modules: a count as given, a share of ``modules`` rounded half up (at least 1)."""
    return k if isinstance(k, int) else max(1, math.floor(k * modules + 0.5))
