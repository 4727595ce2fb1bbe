"""Shared fixtures: tiny in-process models (no downloads) and the embedded model for `slow` tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offline and quiet by default; a test that needs the network is a bug.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SAFEPEFT_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (real public benchmarks; never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from safepeft.models.tiny import tiny_tokenizer as build

    return build()


@pytest.fixture
def tiny_llama():
    """Factory: tiny_llama(seed=0, **config_overrides) -> seeded random LlamaForCausalLM."""
    from safepeft.models.tiny import tiny_llama as build

    return build


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model saved as an HF directory (usable as --model DIR). Larger init std so greedy text varies."""
    from safepeft.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"), initializer_range=0.5)


@pytest.fixture
def tiny_loaded(tiny_model_dir: Path):
    from safepeft.models.loader import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def embedded():
    """The real embedded SmolLM2 (slow tests only). Loaded once per test process."""
    from safepeft.models.loader import load_model

    return load_model("embedded")
