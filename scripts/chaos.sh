#!/usr/bin/env bash
# The chaos suite with its tallies on the terminal (issue 11): kill -9 then --resume in
# sequential and parallel runs, racing starts, a fault server, read-only folders and a full
# disk. `cargo test` runs the same tests quietly; this prints every `chaos:` line.
#   CHAOS_KILLS=40 scripts/chaos.sh          more kills per kill test (default 12)
#   CHAOS_SEED=123 scripts/chaos.sh          replay the random moments of an earlier run
#   scripts/chaos.sh --include-ignored       also ignored cases (none today)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test cli chaos -- --nocapture --test-threads=2 "$@" 2>&1 |
    grep -E '^(chaos:|test |REPEATED|CORRUPT|LEAK|CRASH|SLOW|RAW)|test result'
