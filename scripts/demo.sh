#!/usr/bin/env bash
# The main job: run the sdlc example orchestra offline on the embedded model.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
# The embedded model (98 MB, once), fetched and verified by `super` itself: no Python needed.
./target/release/super model pull
goal="${1:-Build a simple login feature for a web application}"
./target/release/super --project examples/sdlc orchestra run sdlc --goal "$goal"
echo
echo "Outputs: examples/sdlc/orchestra_workspaces/sdlc/"
echo "  final result: examples/sdlc/orchestra_workspaces/sdlc/final_results/orchestra_output.txt"
