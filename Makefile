# The documented entry points: `make demo`, `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test install lid-model lint format samples clean

# torch is pinned first: any other spec would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lid-model: $(STAMP)
	$(BIN)/llama-recipe fetch-lid-model

demo: lid-model
	$(BIN)/llama-recipe build recipes/sample.yaml
	$(BIN)/llama-recipe train recipes/sample.yaml

# A local Prefect server on 127.0.0.1:4200 and the sample recipe's deployments; Ctrl-C stops both.
# Its SQLite database lives in build/prefect unless PREFECT_HOME is set.
serve: export PREFECT_HOME ?= $(CURDIR)/build/prefect
serve: lid-model
	$(BIN)/llama-recipe serve recipes/sample.yaml

test: lid-model
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .

samples: $(STAMP)
	$(BIN)/python samples/generate.py

clean:
	rm -rf build .pytest_cache
