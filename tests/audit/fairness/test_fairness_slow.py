"""The embedded SmolLM2 on a small built-in subset: every dimension gets scores, in both scoring modes."""

import pytest

from safepeft.audit.base import AuditOptions
from safepeft.audit.fairness.items import DIMENSIONS
from safepeft.audit.suites import SUITES

pytestmark = pytest.mark.slow


def test_embedded_model_scores_all_nine_dimensions(embedded):
    generator = embedded.generator(batch_size=16, progress=False)
    result = SUITES.get("bbq-builtin")().run(generator, None, AuditOptions(per_category=4, bootstrap=200))
    assert result.n == 36 and list(result.by_category) == list(DIMENSIONS.values())
    for category in result.by_category.values():
        assert category.n == 4
        for name in ("accuracy_ambig", "accuracy_disambig"):
            assert 0.0 <= category.metrics[name].value <= 1.0
    for name, metric in result.metrics.items():
        if metric.value is not None:
            low, high = metric.ci95
            assert low <= metric.value <= high, name
    assert result.params["n_unparsed"] == 0
    # A real model is not a constant: it picks different answer positions across items.
    assert len({s.extra["chosen"] for s in result.samples}) > 1


def test_embedded_model_generate_mode(embedded):
    generator = embedded.generator(batch_size=16, progress=False)
    options = AuditOptions(per_category=1, mode="generate", max_new_tokens=16, bootstrap=100)
    result = SUITES.get("bbq-builtin")().run(generator, None, options)
    assert result.n == 9 and len(result.by_category) == 9
    assert all(s.completion is not None for s in result.samples)
    assert result.params["n_unparsed"] < result.n, [s.completion for s in result.samples]
