# The two commands of the README. Both install what they need first (idempotent, fast when done).
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q

.PHONY: run test setup setup-test lint tiny-jepa

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

# Rebuild the shipped pretrained preset (vjepa_core/models/presets/tiny-jepa.*) from scratch, timed.
tiny-jepa: setup
	$(PYTHON) -m benchmarks.build_tiny_jepa
