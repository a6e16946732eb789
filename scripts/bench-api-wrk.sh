#!/usr/bin/env bash
# The API load test with an external generator (wrk, from apt): `symbi up` (release build,
# throw-away data directory, rate limit off) and the bare axum baseline of
# `symbi bench api --serve-baseline`, side by side on loopback; health, status and execute
# of a trivial agent. Prints wrk's summaries. Needs `cargo build --release --workspace --bins`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/symbi/target}"
SYMBI="${SYMBI_BIN:-$CARGO_TARGET_DIR/release/symbi}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
DUR="${DUR:-5s}"; CONN="${CONN:-16}"
DATA=$(mktemp -d); TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=18380
SYMBI_API_TOKEN=$TOKEN SYMBI_API__RATE_LIMIT_PER_MINUTE=0 "$SYMBI" --data-dir "$DATA" up --listen 127.0.0.1:$PORT >"$DATA/up.log" 2>&1 &
UP=$!
"$SYMBI" bench api --serve-baseline >"$DATA/base.out" 2>/dev/null &
BASE=$!
trap 'kill -INT $UP $BASE 2>/dev/null; wait $UP $BASE 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "symbi ready" "$DATA/up.log" && [ -s "$DATA/base.out" ] && break; sleep 0.1; done
B=$(head -1 "$DATA/base.out"); S=http://127.0.0.1:$PORT
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"echo","dsl":"agent echo(msg: String) -> String {\n with timeout = 5s {\n return \"echo: \" + msg;\n }\n}\n"}' \
  $S/api/v1/agents | jq -r .id)
cat >"$DATA/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"input": {"msg": "hi"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c$CONN -d$DUR --latency"
run() { echo "== $1"; shift; wrk -t2 -c"$CONN" -d"$DUR" --latency "$@" | grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket errors"; }
run "bare axum GET health" "$B/api/v1/health"
run "symbi GET /api/v1/health" "$S/api/v1/health"
run "symbi GET /agents/{id}/status" -H "Authorization: Bearer $TOKEN" "$S/api/v1/agents/$ID/status"
run "bare axum POST execute" -s "$DATA/post.lua" "$B/api/v1/agents/$ID/execute"
run "symbi POST /agents/{id}/execute" -s "$DATA/post.lua" "$S/api/v1/agents/$ID/execute"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
