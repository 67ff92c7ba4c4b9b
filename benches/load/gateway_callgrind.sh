#!/usr/bin/env bash
# User-space instructions per proxied gateway request, counted by valgrind's callgrind:
# repeatable whatever else the machine is doing, unlike CPU time, so it is the figure
# to compare two builds of the gateway with. Kernel time (sockets, fsync) is not in it.
#
#   benches/load/gateway_callgrind.sh [BINARY] [SECONDS]
#
# Starts mock-llm-server and BINARY (default: target/release/prompt-registry) under
# callgrind on a fresh SQLite file, warms up, zeroes the counters, drives
# /v1/chat/completions with 8 connections for SECONDS (default 15), dumps, and prints
# instructions per request. Needs valgrind (Debian package `valgrind`).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${CARGO_TARGET_DIR:-target}/release
BIN=${1:-$T/prompt-registry}
SECS=${2:-15}
cargo build --release -q -p prompt-http --bin prompt-registry \
  -p prompt-registry-benches --bin gateway-load \
  -p prompt-providers --features prompt-providers/mock-server --bin mock-llm-server
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
MOCK_PORT=18390; REG_PORT=18391
"$T/mock-llm-server" --port $MOCK_PORT > /dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MOCK_PORT") 2>/dev/null && break; sleep 0.1; done
DATABASE_URL="sqlite://$WORK/bench.db" PROMPT_REGISTRY_ADDR="127.0.0.1:$REG_PORT" \
  PROMPT_REGISTRY_RATE_LIMIT=0 PROMPT_REGISTRY_LOG_FORMAT=json RUST_LOG=warn \
  PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS=1 \
  OPENAI_COMPATIBLE_PROVIDERS=upstream UPSTREAM_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" \
  UPSTREAM_API_KEY=mock-key \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$BIN" serve > "$WORK/key" 2> "$WORK/log" &
REG_PID=$!; PIDS+=($REG_PID)
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$REG_PORT/healthz" > /dev/null && break; sleep 0.2; done
KEY=$(head -1 "$WORK/key")
MSG='"messages": [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Summarise the benefits of structured logging in two sentences."}], "max_tokens": 64'
echo "{\"model\": \"upstream/gpt-4o-mini\", $MSG}" > "$WORK/gw.json"
LOAD=("$T/gateway-load" --url "http://127.0.0.1:$REG_PORT/v1/chat/completions" --body "$WORK/gw.json" --auth "Bearer $KEY")
"${LOAD[@]}" --conns 4 --duration 3 > /dev/null # warm-up: connections, caches, statements
callgrind_control -z "$REG_PID" > /dev/null 2>&1
out=$("${LOAD[@]}" --conns 8 --duration "$SECS")
callgrind_control -d "$REG_PID" > /dev/null 2>&1
# The dump is written by the profiled process: wait (bounded) for its totals line.
dump() { ls -t "$WORK"/cg.out* 2> /dev/null | head -1; }
for _ in $(seq 1 100); do [ -n "$(dump)" ] && grep -qE "^(summary|totals):" "$(dump)" && break; sleep 0.1; done
n=$(echo "$out" | sed -E 's/.*requests=([0-9]+).*/\1/')
ir=$(grep -hE "^(summary|totals):" "$(dump)" | head -1 | awk '{print $2}')
echo "$out"
python3 -c "print(f'binary: $BIN\nrequests: $n\ninstructions: $ir\ninstructions per request: {$ir / $n:,.0f}')"
