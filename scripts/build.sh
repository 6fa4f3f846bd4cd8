#!/usr/bin/env bash
# Configures and builds frugal (Release, Ninja) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)"
