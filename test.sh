#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite offline. Extra flags go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
