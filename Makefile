# The two commands of the README. Both install what they need first (idempotent, fast when done).
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q

.PHONY: run test setup setup-test lint docs tiny-jepa

run: setup
	runner run-matrix

test: setup-test
	$(PYTHON) -m pytest

setup:
	$(PIP) -e ".[ray]"

setup-test:
	$(PIP) -e ".[test]"
	bash scripts/install-test-tools.sh

lint:
	ruff check .

# The documentation site (docs/, Sphinx + MyST), warnings as errors, offline; open docs/_build/html/index.html.
docs:
	$(PYTHON) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Rebuild the shipped pretrained preset (vjepa_core/models/presets/tiny-jepa.*) from scratch, timed.
tiny-jepa: setup
	$(PYTHON) -m benchmarks.build_tiny_jepa
