"""Fixtures of the study tests (helpers live in study_helpers.py)."""

from __future__ import annotations

import pytest
from study_helpers import doubles_study, write_yaml


@pytest.fixture
def study_file(tmp_path):
    return write_yaml(tmp_path / "study.yaml", doubles_study())
