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

# --- symbi-audit: independent verifier (crates/symbi-audit/tests/independent_verify.py) ---
# A venv with PyPI `cryptography` (Ed25519); the test finds it at $DEPS/audit-venv.
if ! "$DEPS/audit-venv/bin/python3" -c 'import cryptography' >/dev/null 2>&1; then
  log "audit: creating $DEPS/audit-venv with cryptography"
  python3 -m venv "$DEPS/audit-venv"
  "$DEPS/audit-venv/bin/pip" install --quiet --disable-pip-version-check 'cryptography>=42,<50'
fi
# --- end symbi-audit ---

# ---- api (symbi-api): schemathesis, kubernetes-validate, the official Python client ------
# One virtualenv; the API tests find the tools through SYMBI_TEST_DEPS (default above).
API_VENV="$DEPS/api-venv"
if [ ! -x "$API_VENV/bin/python" ]; then
  log "api: creating $API_VENV"
  python3 -m venv "$API_VENV" || { apt-get install -y python3-venv >/dev/null && python3 -m venv "$API_VENV"; }
fi
API_PKGS=(schemathesis==4.32.5 kubernetes-validate==1.37.0 symbiont-sdk==1.16.0)
if ! "$API_VENV/bin/python" -c 'import schemathesis, kubernetes_validate, symbiont' 2>/dev/null; then
  log "api: installing ${API_PKGS[*]}"
  "$API_VENV/bin/pip" install --quiet --disable-pip-version-check "${API_PKGS[@]}"
fi
# ---- end api ------------------------------------------------------------------------------
