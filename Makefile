# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default, no account needed: train and log a small
## sweep to ./mlflow.db, list it, copy it to the vendor-neutral archive and to W&B and
## Comet offline folders, check all three value by value, and say what to run next.
demo: export MLFLOW_DISABLE_TELEMETRY = true
demo: export COMET_ERROR_TRACKING_ENABLE = false
demo: export WANDB_SILENT = true
demo: $(STAMP)
	$(BIN)/python examples/quickstart.py
	$(BIN)/trackbridge ls mlflow
	$(BIN)/trackbridge ls mlflow:quickstart
	$(BIN)/trackbridge copy mlflow:quickstart dir:./demo-archive
	$(BIN)/trackbridge copy mlflow:quickstart wandb-offline:./demo-wandb
	$(BIN)/trackbridge copy mlflow:quickstart comet-offline:./demo-comet
	$(BIN)/trackbridge check mlflow:quickstart dir:./demo-archive --report demo-report.html
	@echo "report of that check (open it in a browser): $(CURDIR)/demo-report.html"
	$(BIN)/trackbridge check mlflow:quickstart wandb-offline:./demo-wandb
	$(BIN)/trackbridge check mlflow:quickstart comet-offline:./demo-comet
	$(BIN)/python examples/demo_next_steps.py dir:./demo-archive wandb-offline:./demo-wandb comet-offline:./demo-comet

## The distribution's packages the suite runs for real (Chromium, PostgreSQL), if missing.
system:
	bash .ci/system-packages

## The test suite: real MLflow (embedded sqlite, servers on 127.0.0.1 on sqlite and on
## PostgreSQL), a headless browser, no network.
test: $(STAMP) system
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/facade_overhead.py
	$(BIN)/python benchmarks/sync_mlflow.py

clean:
	rm -rf $(VENV) mlflow.db mlruns .trackbridge demo-archive demo-wandb demo-comet demo-report.html
