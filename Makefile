# Two commands on a fresh machine:  `make demo` (the main job on embedded data)  and  `make test`.
# Each sets up its own virtualenv in .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench setup clean report-deps

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[cpu,test]'
	touch $@

demo: $(STAMP)
	$(BIN)/python -m keras_nas.demo

lint: $(STAMP)
	$(BIN)/ruff check keras_nas tests benchmarks
	$(BIN)/ruff format --check keras_nas tests benchmarks

test: $(STAMP) lint
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --durations=15 tests

# Optional system tools for `keras-nas report`: Graphviz draws the cells (Pillow otherwise) and
# Chromium runs tests/test_report.py's browser test (skipped otherwise). Debian/Ubuntu, as root.
report-deps:
	apt-get update && apt-get install -y graphviz chromium

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
