"""E-DIEM properties and the selection rules (threshold / number, exactly k, no scores from modified weights)."""

import pytest
import torch

from safepeft.errors import ConfigError
from safepeft.repair.ediem import ediem, ediem_scores, reference_stats
from safepeft.repair.selection import select_modules


def test_median_distance_scores_zero_closer_is_negative_farther_positive():
    distances = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    stats = reference_stats(distances)
    assert stats.centre == 3.0 and stats.spread == pytest.approx(2.0)  # Q3 - Q1 = 4 - 2
    assert ediem(3.0, stats) == 0.0
    assert ediem(2.0, stats) < 0 < ediem(4.5, stats)
    assert ediem(5.0, stats) == pytest.approx(1.0)


@pytest.mark.parametrize("statistic", ["median-iqr", "mean-std"])
def test_invariant_to_common_scale_and_shift(statistic):
    gen = torch.Generator().manual_seed(0)
    distances = {f"m{i}": float(x) for i, x in enumerate(torch.rand(9, generator=gen) * 3 + 1)}
    groups = dict.fromkeys(distances, "g")
    base, _ = ediem_scores(distances, groups, statistic)
    moved, _ = ediem_scores({n: 7.5 * d + 2.0 for n, d in distances.items()}, groups, statistic)
    for name in distances:
        assert moved[name] == pytest.approx(base[name], abs=1e-9)


def test_dimension_insensitive_across_shape_groups():
    """Random pairs of very different sizes: a pooled reference flags every large module, per-shape sets do not."""
    gen = torch.Generator().manual_seed(1)
    distances, by_shape = {}, {}
    for dim, tag in ((64, "small"), (4096, "large")):
        for i in range(41):
            a, b = torch.rand(dim, generator=gen), torch.rand(dim, generator=gen)
            distances[f"{tag}{i}"] = float(torch.linalg.vector_norm(a - b))
            by_shape[f"{tag}{i}"] = tag
    pooled, _ = ediem_scores(distances, dict.fromkeys(distances, "all"))
    assert min(pooled[f"large{i}"] for i in range(41)) > max(pooled[f"small{i}"] for i in range(41))
    scores, stats = ediem_scores(distances, by_shape)
    assert stats["large"].centre > 5 * stats["small"].centre
    for tag in ("small", "large"):
        group = [scores[f"{tag}{i}"] for i in range(41)]
        assert sum(s > 0 for s in group) == 20 and max(abs(s) for s in group) < 4


def test_degenerate_reference_set_is_an_error_not_noise():
    """The official code's S = 50 copies of one pair has zero spread: refuse instead of ranking rounding noise."""
    with pytest.raises(ConfigError, match="no spread"):
        ediem_scores({"only": 1.3}, {"only": "g"})
    with pytest.raises(ConfigError, match="no spread"):
        ediem_scores({"a": 2.0, "b": 2.0}, {"a": "g", "b": "g"})


SCORES = {"a": 0.9, "b": 0.2, "c": 0.45, "d": 0.7, "e": None, "f": 0.45}


def test_threshold_low_and_high():
    assert select_modules(SCORES, "threshold", 0.45, 0, worst="low") == {"b", "c", "f"}
    assert select_modules(SCORES, "threshold", 0.7, 0, worst="high") == {"a", "d"}


def test_number_takes_exactly_k_worst_with_name_tiebreak():
    assert select_modules(SCORES, "number", 0.0, 2, worst="low") == {"b", "c"}  # c and f tie; name order
    assert select_modules(SCORES, "number", 0.0, 2, worst="high") == {"a", "d"}
    assert len(select_modules(SCORES, "number", 0.0, 5, worst="low")) == 5


def test_unscored_modules_are_never_selected_and_k_is_checked():
    assert "e" not in select_modules(SCORES, "threshold", 10.0, 0, worst="low")
    with pytest.raises(ConfigError, match="only 5 adapter modules"):
        select_modules(SCORES, "number", 0.0, 6, worst="low")
