#!/usr/bin/env bash
# Installs what the tests need from package registries, pinned, into a cache folder:
# the reference MCP servers from npm (filesystem over stdio, everything over streamable HTTP).
# Idempotent and fast when done. Tests find them in ${SUPER_TEST_DEPS:-$HOME/.cache/super/test-deps}.
set -euo pipefail

DEPS="${SUPER_TEST_DEPS:-$HOME/.cache/super/test-deps}"
FILESYSTEM="@modelcontextprotocol/server-filesystem@2026.8.31"
EVERYTHING="@modelcontextprotocol/server-everything@2026.8.31"
STAMP="$DEPS/.installed-$(echo "$FILESYSTEM $EVERYTHING" | sha256sum | cut -c1-16)"

if [ -f "$STAMP" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup-test-deps: npm is not installed; the MCP tests will be skipped (or fail under CI)" >&2
  if [ -n "${CI:-}" ]; then exit 1; fi
  exit 0
fi
mkdir -p "$DEPS"
cd "$DEPS"
[ -f package.json ] || echo '{"name": "super-test-deps", "private": true}' > package.json
echo "setup-test-deps: installing $FILESYSTEM and $EVERYTHING into $DEPS" >&2
npm install --no-audit --no-fund --save-exact --loglevel=error "$FILESYSTEM" "$EVERYTHING" >&2
rm -f "$DEPS"/.installed-*
touch "$STAMP"
