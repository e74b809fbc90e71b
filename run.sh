#!/usr/bin/env bash
# Set up (first run only) and start the hub at http://127.0.0.1:7860. Extra flags go to app.py,
# e.g. `bash run.sh --listen --port 8080` or `bash run.sh --share`. GRADIO_SERVER_NAME and
# GRADIO_SERVER_PORT are honoured when no flag says otherwise. Hugging Face Hub models (picked by id in
# the text-to-image tab) download when online; set HF_HUB_OFFLINE=1 to use only the local cache.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
