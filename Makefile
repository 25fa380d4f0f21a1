# The documented entry points: `make demo`, `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test install lid-model lint format samples clean fuzz faults

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

# One worker per core, each taking whole test files (module fixtures are built once).
test: lid-model
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=20

# Coverage-guided fuzzing (atheris) of the ten readers from their real seeds, FUZZ_SECONDS each;
# the corpus grows in build/fuzz-corpus, failing inputs land in build/fuzz.
FUZZ_SECONDS ?= 600
FUZZ_FORMATS ?= wet warc c4 jsonl mediawiki stackexchange gutenberg books-text arxiv github
fuzz: $(STAMP)
	for format in $(FUZZ_FORMATS); do \
		$(BIN)/python -m tests.fuzz.run $$format --seconds $(FUZZ_SECONDS) \
			--corpus build/fuzz-corpus/$$format --findings build/fuzz || exit 1; \
	done

# The fault-injection suite with every failpoint in every stage (make test runs a part of it).
faults: lid-model
	LLAMA_RECIPE_FAULT_ALL_POINTS=1 $(BIN)/python -m pytest -m faults tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .

samples: $(STAMP)
	$(BIN)/python samples/generate.py

clean:
	rm -rf build .pytest_cache
