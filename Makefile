# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run the quickstart on the embedded MLflow store (./mlflow.db) and list what it logged.
demo: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python examples/quickstart.py
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/trackbridge ls mlflow

## The test suite: real MLflow (embedded sqlite and servers on 127.0.0.1), no network.
test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/facade_overhead.py
	$(BIN)/python benchmarks/sync_mlflow.py

clean:
	rm -rf $(VENV) mlflow.db mlruns .trackbridge
