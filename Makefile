PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench native clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The engine's per-event path compiled with mypyc (build_engine.py), rebuilt when the digest of
# engine/*.py differs from the one it was built from (a no-op otherwise). Without it the engine
# runs as plain Python, about three times slower.
native: $(STAMP)
	$(BIN)/python build_engine.py

run: native
	$(BIN)/tillstream worker

# The whole suite on the compiled engine, then the engine's own tests on its Python sources.
test: native
	$(BIN)/pytest
	TILLSTREAM_ENGINE=python $(BIN)/pytest tests/engine

bench: native
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data build
