#!/usr/bin/env bash
# Change-feed benchmarks (results go to BENCHMARKS.md by hand), with `feed-load`:
#  1. commit of a label move -> its event on a WebSocket subscriber of the same
#     instance (SQLite file), p50/p99 over MOVES sequential moves;
#  2. the same with the subscriber on a second instance on the same Postgres database
#     (the wake-up crosses instances through NOTIFY);
#  3. one event to SUBSCRIBERS WebSocket subscribers: commit -> the last one has it;
#     server RSS with them connected and idle.
# Needs: curl, psql and a Postgres URL in PG_URL (default: the local test database).
# PROFILE=release (default) or PROFILE=debug. Usage: ./benches/load/feed.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
MOVES=${MOVES:-200}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
ROUNDS=${ROUNDS:-10}
PROFILE=${PROFILE:-release}
FLAG=$([ "$PROFILE" = release ] && echo --release || true)
ulimit -n 65536 2>/dev/null || true

cargo build $FLAG -q -p prompt-http --bin prompt-registry
cargo build $FLAG -q -p prompt-registry-benches --bin feed-load
BIN=target/$PROFILE/prompt-registry
LOAD=target/$PROFILE/feed-load
WORK=$(mktemp -d)
PIDS=()
DB=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$DB" ] && psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 1 200); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }
start_registry() { # $1 = DATABASE_URL, $2 = port
  DATABASE_URL="$1" PROMPT_REGISTRY_ADDR="127.0.0.1:$2" PROMPT_REGISTRY_RATE_LIMIT=0 \
    PROMPT_REGISTRY_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve > "$WORK/key-$2" 2>"$WORK/log-$2" &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$2"
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %H:%M') UTC; profile $PROFILE"

echo "-- SQLite, one instance"
start_registry "sqlite://$WORK/feed.db" 18180
"$LOAD" --url http://127.0.0.1:18180 --key "$(head -1 "$WORK/key-18180")" --pid "${PIDS[-1]}" \
  --moves "$MOVES" --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS"

echo "-- Postgres, two instances on one database"
DB="prfeed_$(date +%s)"
psql "$PG_URL" -qc "CREATE DATABASE $DB" >/dev/null
PG_BENCH_URL="${PG_URL%/*}/$DB"
start_registry "$PG_BENCH_URL" 18181
KEY=$(head -1 "$WORK/key-18181")
start_registry "$PG_BENCH_URL" 18182
"$LOAD" --url http://127.0.0.1:18181 --url2 http://127.0.0.1:18182 --key "$KEY" --pid "${PIDS[-2]}" \
  --moves "$MOVES" --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS"
