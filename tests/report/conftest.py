"""Fixtures of the report tests (the results builder lives in results_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_fixtures import write_variants


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """A directory with six variants' results.json files (one sub-directory each)."""
    directory = tmp_path_factory.mktemp("results")
    write_variants(directory)
    return directory
