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

# xdist runs one process per core: give each one core's worth of torch threads. Two processes each spinning two
# OpenMP threads on two cores slow every test down several-fold.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # also for subprocesses the tests start

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    if _WORKERS > 1:
        import torch

        torch.set_num_threads(THREADS)


def pytest_collection_modifyitems(config, items):
    """Slow tests first (with --maxschedchunk 1 xdist hands tests out in this order, so the long ones start early and
    fast ones fill the gaps), those needing the aligned model first of all: the first builds it on every core while
    the other worker waits for it (see aligned_embedded_dir), then the demo, the longest test."""

    def order(item) -> tuple[bool, bool, bool]:
        slow = item.get_closest_marker("slow") is not None
        return not slow, "aligned_embedded_dir" not in item.fixturenames, "demo" not in item.nodeid

    items.sort(key=order)


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


# Steps of the shared test align run (the product default, measured in docs/finetune.md: refusal on held-out harmful
# prompts 0.11 -> 0.95). Changing any align parameter or any file of safepeft/finetune (outside salora/) changes the
# cache key, so the aligned model is rebuilt once.
ALIGN_TEST_STEPS = 36


@pytest.fixture(scope="session")
def aligned_embedded_dir() -> Path:
    """The embedded SmolLM2 after `align` (LoRA on builtin:safety, merged): an HF dir for `load_model(DIR)`.

    Built once per machine and code version, shared by xdist workers and repeated runs: cached under
    cache_dir()/test-artifacts/aligned-<key>, built under an fcntl file lock and renamed into place atomically.
    """
    import fcntl
    import hashlib
    import shutil
    import tempfile

    import safepeft.finetune
    from safepeft.finetune.align import ALIGN_RECORD, DEFAULT_LORA, DEFAULT_TRAIN, align
    from safepeft.models.fingerprint import cache_dir
    from safepeft.models.loader import load_model

    train_spec = DEFAULT_TRAIN.model_copy(update={"max_steps": ALIGN_TEST_STEPS})
    package = Path(safepeft.finetune.__file__).parent
    digest = hashlib.sha256(train_spec.model_dump_json().encode() + DEFAULT_LORA.model_dump_json().encode())
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".jsonl") and "salora" not in p.parts):
        digest.update(str(path.relative_to(package)).encode() + path.read_bytes())
    root = cache_dir() / "test-artifacts"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"aligned-{digest.hexdigest()[:16]}"
    with open(root / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other processes wait here while one builds
        if not (target / ALIGN_RECORD).is_file():
            import torch

            tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}."))
            threads = torch.get_num_threads()
            torch.set_num_threads(os.cpu_count() or 1)  # the other workers wait on the lock: use their cores too
            try:
                align(load_model("embedded"), tmp / "model", train_spec=train_spec, show_progress=False)
                os.replace(tmp / "model", target)
            finally:
                torch.set_num_threads(threads)
                shutil.rmtree(tmp, ignore_errors=True)
    return target
