#!/usr/bin/env bash
# The README's test command: installs what the suite needs, starts the services it uses,
# then runs every test of the workspace (cargo nextest) and the doc tests.
# Runs as root or through sudo on Debian 12. Non-interactive.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build through a fixed folder outside the clone so repeated runs (and CI after a
# development session) reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/symbi/target}"
# CI builds once per run: incremental state only costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
mkdir -p "$CARGO_TARGET_DIR"
# Test executables are relinked for every checkout path; stale ones from earlier runs
# (each carries its dependencies' debug info, up to ~1.5 GB) would otherwise fill the disk.
if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
  find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f ! -name '*.*' -mmin +30 -delete || true
  # Half-written outputs of interrupted links.
  find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -name '*.tmp*' -mmin +30 -delete || true
fi
rm -rf "$CARGO_TARGET_DIR/debug/incremental"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/setup-host.sh
./scripts/setup-test-deps.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# Everything the tests run as child processes (the symbi binary, fixtures) is built first.
cargo build --workspace --bins
cargo nextest run --workspace --profile ci "$@"
cargo test --workspace --doc
