#!/usr/bin/env bash
# Set up (first run only) and start the hub at http://127.0.0.1:7860. Extra flags go to app.py,
# e.g. `bash run.sh --listen --port 8080` or `bash run.sh --share`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/python app.py "$@"
