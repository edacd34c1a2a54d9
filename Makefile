# Two commands set up everything on a fresh Linux machine with Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean bytecode

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# An editable install leaves the sources uncompiled, and with PYTHONDONTWRITEBYTECODE set
# (as on this machine) every start (and every lab process) would compile them again.
bytecode: $(BIN)/.installed
	$(BIN)/python -m compileall -q playground widgets

run: bytecode
	$(BIN)/sockplay

test: bytecode lint
	$(BIN)/python -m pytest -q

# ruff (rules and format), the layers (import-linter, pyproject.toml), the types (mypy).
lint: $(BIN)/.installed
	$(BIN)/ruff check playground widgets tests bench
	$(BIN)/ruff format --check playground widgets tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

bench: bytecode
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/steps_per_second.py
	$(BIN)/python bench/many_connections.py
	$(BIN)/python bench/capture_rate.py
	$(BIN)/python bench/idle_cost.py
	$(BIN)/python bench/big_write.py
	$(BIN)/python bench/parse_rate.py
	$(BIN)/python bench/packet_windows.py
	$(BIN)/python bench/tui_startup.py
	$(BIN)/python bench/tui_keypress_latency.py
	$(BIN)/python bench/many_held.py
	$(BIN)/python bench/heap_layout.py
	$(BIN)/python bench/switch_accuracy.py
	$(BIN)/python bench/hosts_start.py
	$(BIN)/python bench/trace_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
