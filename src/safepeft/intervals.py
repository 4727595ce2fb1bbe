"""Small-sample 95% intervals for proportions and paired differences of proportions (numpy + scipy, no torch).

A percentile bootstrap of a proportion collapses to ``[p, p]`` when every item agrees (``1.00 [1.00, 1.00]`` at
n = 3), and a paired bootstrap to ``[0, 0]`` when no item changed, which claims certainty that 3 or 8 items cannot
give. These intervals do not collapse:

- a proportion gets the Clopper–Pearson (exact) interval, whose coverage is at least the nominal level for every n
  and p (Wilson's dips well below 95% at n = 3, p = 0.05, which the tests check);
- a paired difference of proportions gets Newcombe's (1998) method 10 (the square-and-add combination of the two
  single-proportion intervals with the phi correlation correction), here built from Clopper–Pearson intervals
  instead of Wilson's, which keeps its coverage at or above nominal at n < 10.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054
SMALL_N = 20
"""Below this many items an interval is flagged as too small to tell a change from noise."""
WIDE = 0.5
"""An interval wider than this is flagged the same way (whatever n)."""


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes out of n (n >= 1)."""
    from scipy.stats import beta

    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def paired_proportion_difference(a: int, b: int, c: int, d: int) -> tuple[float, tuple[float, float]]:
    """Difference p1 - p2 of paired binary outcomes and its 95% interval (Newcombe 1998 method 10, exact margins).

    ``a``: both 1; ``b``: first 1, second 0; ``c``: first 0, second 1; ``d``: both 0.
    """
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = clopper_pearson(a + b, n)
    l2, u2 = clopper_pearson(a + c, n)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    # phi with Newcombe's continuity correction (only when positive); 0 when a margin is empty.
    numerator = a * d - b * c
    numerator = max(numerator - n / 2, 0.0) if numerator > 0 else numerator
    phi = numerator / math.sqrt(margins) if margins else 0.0
    diff = p1 - p2
    low = diff - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    high = diff + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return diff, (max(low, -1.0), min(high, 1.0))


SMALL_SAMPLE_RULE = f"under {SMALL_N} items or a 95% CI wider than {WIDE}, too few to tell a change from noise"


def too_small(n: int, ci95: tuple[float, float] | None) -> bool:
    """The rule for "cannot tell a change from noise": fewer than SMALL_N items, or a 95% interval wider than WIDE."""
    return n < SMALL_N or (ci95 is not None and ci95[1] - ci95[0] > WIDE)
