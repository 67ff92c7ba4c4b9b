#!/usr/bin/env bash
# HTTP load benchmarks of issue 5 (results go to BENCHMARKS.md by hand):
#  1. GET /api/v1/prompts/{name}/resolve (warm cache) vs a bare axum handler returning
#     the same bytes, same run, 32 connections, wrk on 127.0.0.1;
#  2. POST /api/v1/runs/batch (100 runs per request) into Postgres: runs acknowledged/s;
#  3. resident memory of `serve`: idle and after the loads.
# Needs: wrk (apt-get install wrk), a Postgres URL in PG_URL (default: local test db).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

cargo build --release -q --bin prompt-registry --bin bare-axum
BIN=target/release/prompt-registry
BARE=target/release/bare-axum
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }
wait_up() { for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

start_registry() { # $1 = DATABASE_URL, $2 = port
  DATABASE_URL="$1" PROMPT_REGISTRY_ADDR="127.0.0.1:$2" PROMPT_REGISTRY_RATE_LIMIT=0 \
    PROMPT_REGISTRY_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve > "$WORK/key-$2" 2>"$WORK/log-$2" &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$2"
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $(date -u +%F)"

# 1. resolve vs bare
start_registry "sqlite://$WORK/bench.db" 18080
REG_PID=${PIDS[-1]}
KEY=$(head -1 "$WORK/key-18080")
API=http://127.0.0.1:18080/api/v1
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
TEMPLATE=$(python3 -c "print(('You are {{ persona }} for {{ company }}. Answer in {{ language }}. Tier {{ tier }}. ' + 'Be precise, cite the docs, never invent facts; keep answers short. ' * 14 + 'Question: {{ question }}')[:1024])")
curl -sf "${H[@]}" "$API/prompts/bench%2Fresolve/versions" -d "{\"template\": \"$TEMPLATE\", \"labels\": [\"production\"]}" >/dev/null
echo "serve idle RSS (SQLite): $(rss "$REG_PID")"
curl -sf "${H[@]}" "$API/prompts/bench%2Fresolve/resolve" > "$WORK/resolve.json"
echo "resolve body: $(wc -c < "$WORK/resolve.json") bytes"
"$BARE" 127.0.0.1:18081 "$WORK/resolve.json" & PIDS+=($!)
wait_up http://127.0.0.1:18081 || true
cat > "$WORK/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
for round in 1 2; do
  echo "-- round $round: registry resolve (warm cache)"
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/auth.lua" "$API/prompts/bench%2Fresolve/resolve" | grep -E "Requests/sec|50%|99%"
  echo "-- round $round: bare axum, same bytes"
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/auth.lua" "http://127.0.0.1:18081/x" | grep -E "Requests/sec|50%|99%"
done
echo "serve RSS after resolve load: $(rss "$REG_PID")"

# 2. runs/batch into Postgres (a fresh database)
DB="prbench_$(date +%s)"
psql "$PG_URL" -qc "CREATE DATABASE $DB" >/dev/null
PG_BENCH_URL="${PG_URL%/*}/$DB"
start_registry "$PG_BENCH_URL" 18082
PG_PID=${PIDS[-1]}
KEY2=$(head -1 "$WORK/key-18082")
python3 - "$WORK/batch.json" <<'PY'
import json, sys
runs = [{"provider": "openai", "model": "gpt-4o-mini", "status": "completed", "latency_ms": 100 + i,
         "input_tokens": 10, "output_tokens": 5, "cost_usd": "0.0001", "output": "ok",
         "metadata": {"user": f"u{i}"}} for i in range(100)]
json.dump({"runs": runs}, open(sys.argv[1], "w"))
PY
cat > "$WORK/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY2"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/batch.json", "r"); wrk.body = f:read("*a"); f:close()
LUA
echo "-- runs/batch, 100 runs per request, Postgres"
wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/batch.lua" "http://127.0.0.1:18082/api/v1/runs/batch" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "runs stored: $(psql "$PG_BENCH_URL" -tAc 'select count(*) from runs')"
echo "serve RSS after batch load (Postgres): $(rss "$PG_PID")"
kill "$PG_PID"; wait "$PG_PID" 2>/dev/null || true
psql "$PG_URL" -qc "DROP DATABASE $DB" >/dev/null || true
