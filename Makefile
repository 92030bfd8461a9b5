# The two quick-start commands: `make demo` (train a cGAN on the embedded digits) and `make test`.
# Both create .venv and install ganforge into it first; pass PYTHON=python3.12 to pick another.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganforge-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml examples/plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The example plugin (its own package, found by entry point): tests/test_plugins.py uses it.
	$(BIN)/python -m pip install --quiet -e examples/plugin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ganforge train --preset cgan-digits

test: $(STAMP)
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
