#!/usr/bin/env bash
# The README's run command: set up this host (Docker + gVisor, sandbox images), build
# symbi, run a one-agent example with `symbi run`, then start the daemon `symbi up` on
# embedded defaults (API on 127.0.0.1:8080). Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/symbi/target}"

./scripts/setup-host.sh
cargo build --release --locked --workspace --bins
SYMBI="$CARGO_TARGET_DIR/release/symbi"
if [ -x ./scripts/build-images.sh ]; then SYMBI_BIN="$SYMBI" ./scripts/build-images.sh; fi

echo "== symbi doctor"
"$SYMBI" doctor || true

echo
echo "== symbi run examples/agents/01-greeter.symbi"
"$SYMBI" run examples/agents/01-greeter.symbi --input '{"name": " Ada ", "lang": "FR"}'

echo
echo "== symbi up (Ctrl-C to stop)"
exec "$SYMBI" up "$@"
