"""Is the aligned model a descendant of the base? Alignment moves weights a little; unrelated models differ wholly.

Safety-alignment fine-tunes change each weight matrix by a small fraction of its norm. Two independently trained or
initialised models differ by about √2 of the norm everywhere (‖A − B‖ ≈ √(‖A‖² + ‖B‖²) for unrelated weights). A
safety vector taken between unrelated checkpoints is meaningless, so the methods that add it to weights (RESTA, LoX)
refuse a pair whose typical relative change is too large.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import median

from safepeft.errors import IncompatibleArtifactError

MAX_MEDIAN_RELATIVE_CHANGE = 0.5
"""Median over weight matrices of ‖W_aligned − W_base‖_F / ‖W_base‖_F above which the pair is refused."""


def check_lineage(changes: Mapping[str, tuple[float, float]], base: str, aligned: str,
                  limit: float = MAX_MEDIAN_RELATIVE_CHANGE) -> float:
    """`changes`: name -> (‖V‖_F, ‖W_base‖_F). Returns the median relative change; raises when it exceeds `limit`."""
    ratios = {name: v / w for name, (v, w) in changes.items() if w > 0}
    if not ratios:
        return 0.0
    typical = median(ratios.values())
    if typical > limit:
        worst = max(ratios, key=ratios.__getitem__)
        raise IncompatibleArtifactError(
            f"The aligned model {aligned} does not look like a descendant of the base {base}: the median weight "
            f"matrix differs by {typical:.0%} of its norm (largest: {worst}, {ratios[worst]:.0%}); safety alignment "
            f"moves weights by a few percent.",
            "Pass the base the aligned model was fine-tuned from (e.g. Llama-2-7b-hf for Llama-2-7b-chat).",
        )
    return typical
