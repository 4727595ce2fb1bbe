"""Issue #15: paired rate differences use Newcombe's interval (no [0, 0] if nothing changed); small n is flagged."""

from __future__ import annotations

from safepeft.records import Sample
from safepeft.report import text
from safepeft.report.model import Cell
from safepeft.report.stats import MEAN_SCORE, paired_difference


def _samples(scores):
    return [Sample(id=f"i{i}", category="other", prompt="p", completion="c", score=s) for i, s in enumerate(scores)]


def test_unchanged_rate_on_eight_items_is_not_certain():
    same = _samples([1.0] * 8)
    diff = paired_difference(same, _samples([1.0] * 8), MEAN_SCORE)
    assert diff.value == 0.0 and diff.ci95[0] < -0.1 and diff.ci95[1] > 0.1
    assert diff.too_small and not diff.significant


def test_large_clear_change_is_significant_and_not_small():
    diff = paired_difference(_samples([1.0] * 200), _samples([0.0] * 200), MEAN_SCORE)
    assert diff.value == 1.0 and diff.significant and not diff.too_small


def test_marker_names_the_rule():
    cell = Cell(value=1.0, delta=0.0, delta_ci95=(-0.3, 0.3), small_sample=True)
    assert "small n" in text.marker(cell) and "under 20 items" in text.marker(cell)
