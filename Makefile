# The two commands of the README. Each makes the project's own virtual environment (.venv) from the lock first
# and runs in it; the system's Python only creates it, so externally managed (PEP 668) interpreters work too.
# Stdlib venv + pip, not uv: pip is on every Python and honours the machine's pip configuration (where torch's
# wheels come from, caps on its version), which uv does not read. Fast when done: a stamp keyed by the lock.
PYTHON ?= python3
VENV ?= .venv
LOCK := requirements.lock
STAMP := $(VENV)/installed.lock
BIN := $(VENV)/bin
RUN_ARGS ?=
PYTEST_ARGS ?=
# PyTorch's own wheel index (e.g. its CPU-only builds): its torch wins over the registry's, and the CUDA
# libraries the lock lists for the registry's Linux build are left out.
TORCH_INDEX ?=
# torch moves on purpose only: a new release is GBs to install and wants its own test run.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: run test venv lock test-latest test-tools lint docs screenshots tiny-jepa

# PATH as `source .venv/bin/activate` sets it, for whatever the commands start by name.
ACTIVE := PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"

run: $(STAMP)
	$(ACTIVE) runner run-matrix $(RUN_ARGS)

test: $(STAMP) test-tools
	$(ACTIVE) python -m pytest $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@PYTHON="$(PYTHON)" TORCH_INDEX="$(TORCH_INDEX)" scripts/venv.sh $(VENV) $(LOCK)

test-tools:
	@bash scripts/install-test-tools.sh

# The lock: core, test and every extra the tests use, for every platform (uv's universal resolution writes
# markers, so macOS and aarch64 get their own packages), as a requirements file that plain pip installs.
lock: $(STAMP)
	printf '%s\n' $(TORCH_PINS) > $(VENV)/torch-pins.txt
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.10 --upgrade --quiet \
	  --extra test --extra ray --constraint $(VENV)/torch-pins.txt \
	  --custom-compile-command "make lock" --output-file $(LOCK)

# The newest releases within pyproject.toml's ranges, in a scratch environment made anew: what a library user
# installing vjepa-lab today gets. Then the whole suite on them.
test-latest: test-tools
	rm -rf .venv-latest
	PYTHON="$(PYTHON)" scripts/venv.sh .venv-latest
	.venv-latest/bin/python -m pip install --disable-pip-version-check -q -e ".[test,ray]"
	.venv-latest/bin/python -m pip list --disable-pip-version-check --format freeze > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# The documentation site (docs/, Sphinx + MyST), warnings as errors, offline; open docs/_build/html/index.html.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The docs' dashboard and demo pictures (docs/images/), retaken by the browser tests in headless Chromium.
screenshots: $(STAMP) test-tools
	VJEPA_DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q -p no:cacheprovider

# Rebuild the shipped pretrained preset (vjepa_core/models/presets/tiny-jepa.*) from scratch, timed.
tiny-jepa: $(STAMP)
	$(BIN)/python -m benchmarks.build_tiny_jepa
