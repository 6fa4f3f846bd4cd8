#!/usr/bin/env bash
# From a fresh machine: install dependencies, fetch the default model, build, run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
