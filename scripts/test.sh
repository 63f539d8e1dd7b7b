#!/usr/bin/env bash
# The test command: fetch the embedded model (so the real-model tests run), then every test of
# the workspace in one build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-model.sh
cargo test --workspace --locked
