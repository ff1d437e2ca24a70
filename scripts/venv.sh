#!/usr/bin/env bash
# scripts/venv.sh VENV [LOCK]: make the virtual environment VENV with $PYTHON (default python3) unless it is there,
# then, given LOCK, install the locked versions and vjepa-lab itself (editable) into it and copy LOCK to
# VENV/installed.lock, the stamp `make` compares with. Only VENV is written: the interpreter that creates it is
# never installed into, so a system Python that refuses pip (PEP 668) works. A failure is one line on stderr.
set -euo pipefail
venv=$1
lock=${2:-}
python=${PYTHON:-python3}

fail() { echo "error: $*" >&2; exit 2; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  command -v "$python" >/dev/null 2>&1 || fail "no Python interpreter '$python': set PYTHON to one (3.10 or newer)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || fail "$python is Python $("$python" -c 'import platform; print(platform.python_version())'); vjepa-lab needs 3.10 or newer: set PYTHON to another interpreter"
  rm -rf "$venv"
  log=$(mktemp)
  if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    rm -rf "$venv" "$log"
    fail "$python cannot create a virtual environment (no venv module or no ensurepip): on Debian or Ubuntu, apt-get install python3-venv; or set PYTHON to another interpreter"
  fi
  rm -f "$log"
fi
[ -n "$lock" ] || exit 0

pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
requirements=$lock
if [ -n "${TORCH_INDEX:-}" ]; then
  # That index's torch has no CUDA libraries to pull: leave out those the lock lists for the registry's build.
  requirements=$(mktemp)
  grep -v -E '^(nvidia-|triton==|cuda-)' "$lock" > "$requirements"
  pip+=(--extra-index-url "$TORCH_INDEX")
fi
echo "installing the locked versions ($lock) into $venv"
"${pip[@]}" --requirement "$requirements"
"${pip[@]}" --no-deps --editable .
[ "$requirements" = "$lock" ] || rm -f "$requirements"
cp "$lock" "$venv/installed.lock"
