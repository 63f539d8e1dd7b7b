#!/usr/bin/env bash
# Install `kubernetes-validate` (PyPI, pinned) into a cache venv, for the export tests that
# check the exported ConfigMap, PersistentVolumeClaim and Job with `kubernetes-validate --strict`.
#
#   scripts/setup-kubernetes-validate.sh    # prints the path of the kubernetes-validate command
#
# Venv: ${XDG_CACHE_HOME:-$HOME/.cache}/super/kubernetes-validate (the path the tests look at;
# SUPER_KUBERNETES_VALIDATE overrides it for them). Idempotent: a venv already holding the
# pinned version is left alone.
set -euo pipefail

VERSION="1.37.0"
PYTHON="${PYTHON:-python3}"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/super/kubernetes-validate"
BIN="$VENV/bin/kubernetes-validate"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true
}

if [[ -x "$BIN" && "$(installed_version)" == "$VERSION" ]]; then
    echo "kubernetes-validate $VERSION already installed: $BIN" >&2
    echo "$BIN"
    exit 0
fi

rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$VERSION" >&2
if [[ "$(installed_version)" != "$VERSION" ]]; then
    echo "failed to install kubernetes-validate $VERSION into $VENV" >&2
    exit 1
fi
echo "installed kubernetes-validate $VERSION: $BIN" >&2
echo "$BIN"
