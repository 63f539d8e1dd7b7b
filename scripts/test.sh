#!/usr/bin/env bash
# The test command: fetch the embedded model (so the real-model tests run), the reference MCP
# servers (so the MCP tests run) and kubernetes-validate (for the export tests), then every test
# of the workspace in one build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-model.sh
./scripts/setup-test-deps.sh
./scripts/setup-kubernetes-validate.sh
cargo test --workspace --locked
