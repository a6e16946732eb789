#!/usr/bin/env bash
# Builds symbi's sandbox images locally, with no registry access:
#   busybox — FROM scratch + the static /bin/busybox of Debian's busybox-static
#   debian  — debootstrap --variant=minbase --include=jq bookworm (cached under
#             /var/cache/symbi/images/, SYMBI_IMAGE_CACHE to move it)
# Images are tagged symbi/<name>:sha256-<image id> and recorded under <data dir>/images/,
# where the sandbox verifies them before use. Idempotent: an unchanged image is not
# loaded again. Arguments are passed to `symbi tools build-images` (e.g. --only busybox,
# --data-dir DIR). Needs Docker running (./scripts/setup-host.sh) and root for debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/symbi/target}"
SYMBI="${SYMBI_BIN:-}"
if [ -z "$SYMBI" ]; then
  cargo build --quiet -p symbi --bin symbi
  SYMBI="$CARGO_TARGET_DIR/debug/symbi"
fi
# Global options (--data-dir, --config) go before the subcommand; the rest after it.
exec "$SYMBI" tools build-images "$@"
