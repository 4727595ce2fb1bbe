"""Issue #15 item 4: each heatmap cell shows its n, and a cell from one prompt is drawn as a single verdict."""

from __future__ import annotations

import re
from pathlib import Path

from safepeft.records import ArtifactRef, AuditResults, CategoryResult, Metric, SuiteResult
from safepeft.report import svg
from safepeft.report.build import _matrix
from safepeft.report.load import Variant
from safepeft.report.markdown import _matrices


def _variant(counts: dict[str, int]) -> Variant:
    by_category = {c: CategoryResult(n=n, metrics={"compliance_rate": Metric(value=1.0 / n, ci95=(0.0, 1.0))})
                   for c, n in counts.items()}
    results = AuditResults(model=ArtifactRef(spec="m"), suites={"builtin": SuiteResult(
        kind="safety", n=sum(counts.values()), metrics={}, by_category=by_category)})
    return Variant(name="m", path=Path("m"), results=results)


def test_cells_carry_their_n_and_a_single_prompt_is_marked():
    counts = {"S1_violent_crimes": 12, "S2_non_violent_crimes": 1}
    matrix = _matrix([_variant(counts)], "builtin", "compliance_rate", "t", "category", lambda key: key)
    assert matrix.counts == {"m": counts}
    drawn = svg.heatmap(matrix, ["m"], "h0")
    assert re.findall(r'data-n="(\d+)"', drawn) == ["12", "1"]
    assert ">n=12<" in drawn and ">n=1<" in drawn
    single = re.search(r'<rect[^>]*data-n="1"[^>]*>', drawn).group(0)
    assert "stroke-dasharray" in single and "stroke-dasharray" not in re.search(r'<rect[^>]*data-n="12"[^>]*>',
                                                                                  drawn).group(0)
    assert "one prompt: a single verdict" in drawn
    table = "\n".join(_matrices([matrix], True, ""))
    assert "(n=12)" in table and "(n=1: one prompt)" in table
