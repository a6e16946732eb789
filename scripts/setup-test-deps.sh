#!/usr/bin/env bash
# Test-only peers that come from package registries: npm MCP servers and PyPI tools.
# Installed into a cache folder outside the clone; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS="${SYMBI_TEST_DEPS:-/var/cache/symbi/test-deps}"
mkdir -p "$DEPS"
log() { printf '[setup-test-deps] %s\n' "$*" >&2; }
# Sections are added by the components that need them (MCP, API, context).
log "test dependencies in $DEPS"
