#!/usr/bin/env bash
# From a fresh machine: install dependencies, fetch the default model, build, and generate text.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
./build/frugal run -m models/SmolLM2-135M-Instruct.Q4_1.gguf --chat \
  -p "${1:-Write a short story about a robot who learns to paint.}" -n 200 --seed 42
