# mlxas: set-up, demo and tests. `make demo` and `make test` are all a new user needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlxas-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# TensorFlow is chatty on import; keep user-facing output readable.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test lint bench clean-demo help

help:
	@echo "make demo   set up .venv and run the default workflow (config/config.yaml) on all cores"
	@echo "make test   set up .venv and run the test suite"
	@echo "make lint   ruff, snakefmt --check and snakemake --lint"
	@echo "make bench  run the benchmarks in benchmarks/ (slow)"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; mlxas needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local
	@echo "demo finished: see results/cu_default/ (evaluation/metrics.json, parity_*.png)"

# pytest exits 5 when a selection runs no test; that is not a failure of the suite.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests selected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint --configfile config/config.yaml

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean-demo:
	rm -rf results/cu_default .snakemake
