#!/usr/bin/env bash
# Gateway benchmark of issue 7 (results go to BENCHMARKS.md by hand):
#  1. POST /v1/chat/completions through `prompt-registry serve` (run logging on, SQLite
#     file) to the local mock upstream, vs the same body straight to the mock, same run:
#     latency p50/p99 at a fixed rate and closed-loop with 16 connections;
#  2. CPU time of the server process per proxied request (user+system from
#     /proc/PID/stat, divided by requests);
#  3. maximum requests/s with the server pinned to one core (taskset), the load
#     generator and the mock on the other;
#  4. resident memory of the server: idle and after the loads.
# Needs: taskset (util-linux). Load generator: benches/load/gateway_load.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
RATE=${RATE:-1000}
T=${CARGO_TARGET_DIR:-target}/release

cargo build --release -q -p prompt-http --bin prompt-registry \
  -p prompt-registry-benches --bin gateway-load \
  -p prompt-providers --features prompt-providers/mock-server --bin mock-llm-server
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }
wait_up() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

echo "== machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB; $(date -u +%FT%TZ)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Group commits of runs so far, from the server's own metrics: how many, runs per
# commit, and mean time of one (BEGIN … COMMIT with the WAL fsync). A run is answered
# only after its commit, so at a fixed rate the commit time is in every gateway latency.
commit_stats() { # $1 = label; figures since the previous call
  curl -s "http://127.0.0.1:$REG_PORT/metrics" | python3 -c '
import os, sys
m = {}
for line in sys.stdin:
    if line.startswith("prompt_registry_run_commit_"):
        name, value = line.rsplit(" ", 1)
        m[name] = float(value)
now = [m.get("prompt_registry_run_commit_seconds_count", 0.0),
       m.get("prompt_registry_run_commit_runs_sum", 0.0),
       m.get("prompt_registry_run_commit_seconds_sum", 0.0)]
state = sys.argv[2]
before = [float(x) for x in open(state).read().split()] if os.path.exists(state) else [0.0] * 3
open(state, "w").write(" ".join(map(str, now)))
n, runs, secs = (a - b for a, b in zip(now, before))
if n:
    print(f"{sys.argv[1]}: {n:.0f} group commits, {runs / n:.1f} runs per commit, mean commit {secs / n * 1000:.2f} ms")
' "$1" "$WORK/commits"
}

MOCK_PORT=18190; REG_PORT=18191
taskset -c 1 "$T/mock-llm-server" --port $MOCK_PORT > /dev/null 2>&1 & PIDS+=($!)
wait_port $MOCK_PORT
start_registry() { # $1 = cpu list for taskset
  rm -f "$WORK/bench.db"*
  DATABASE_URL="sqlite://$WORK/bench.db" PROMPT_REGISTRY_ADDR="127.0.0.1:$REG_PORT" \
    PROMPT_REGISTRY_RATE_LIMIT=0 PROMPT_REGISTRY_LOG_FORMAT=json RUST_LOG=warn \
    PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS=1 \
    OPENAI_COMPATIBLE_PROVIDERS=upstream UPSTREAM_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" \
    UPSTREAM_API_KEY=mock-key taskset -c "$1" "$T/prompt-registry" serve > "$WORK/key" 2>"$WORK/log" &
  REG_PID=$!; PIDS+=($REG_PID)
  wait_up "http://127.0.0.1:$REG_PORT/healthz"
  KEY=$(head -1 "$WORK/key")
}
MSG='"messages": [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Summarise the benefits of structured logging in two sentences."}], "max_tokens": 64'
echo "{\"model\": \"upstream/gpt-4o-mini\", $MSG}" > "$WORK/gw.json"
echo "{\"model\": \"gpt-4o-mini\", $MSG}" > "$WORK/direct.json"
GW=(--url "http://127.0.0.1:$REG_PORT/v1/chat/completions" --body "$WORK/gw.json")
DIRECT=(--url "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" --body "$WORK/direct.json" --auth "Bearer mock-key")

start_registry 0,1
echo "serve idle RSS: $(rss "$REG_PID")"
LOAD=(taskset -c 1 "$T/gateway-load")
"${LOAD[@]}" "${GW[@]}" --auth "Bearer $KEY" --conns 4 --duration 2 > /dev/null # warm-up
commit_stats "warm-up" > /dev/null
for round in 1 2; do
  echo "-- round $round: fixed rate $RATE req/s, $CONNS connections, ${DURATION}s"
  echo -n "direct to mock: "; "${LOAD[@]}" "${DIRECT[@]}" --conns "$CONNS" --rate "$RATE" --duration "$DURATION"
  before=$(ticks "$REG_PID")
  echo -n "through gateway: "; out=$("${LOAD[@]}" "${GW[@]}" --auth "Bearer $KEY" --conns "$CONNS" --rate "$RATE" --duration "$DURATION"); echo "$out"
  after=$(ticks "$REG_PID")
  n=$(echo "$out" | sed -E 's/.*requests=([0-9]+).*/\1/')
  echo "server CPU per proxied request: $(python3 -c "print(f'{($after-$before)/$HZ/$n*1000:.3f} ms')")"
  commit_stats "run log during the fixed rate"
  echo "-- round $round: closed loop, $CONNS connections, ${DURATION}s"
  echo -n "direct to mock: "; "${LOAD[@]}" "${DIRECT[@]}" --conns "$CONNS" --duration "$DURATION"
  echo -n "through gateway: "; "${LOAD[@]}" "${GW[@]}" --auth "Bearer $KEY" --conns "$CONNS" --duration "$DURATION"
  commit_stats "run log during the closed loop"
done
echo "runs logged: $(sqlite3 "$WORK/bench.db" 'select count(*) from runs' 2>/dev/null || echo '(sqlite3 not installed)')"

echo "serve RSS after load: $(rss "$REG_PID")"
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true

echo "-- server pinned to core 0 (mock and load generator on core 1), closed loop, 64 connections"
start_registry 0
before=$(ticks "$REG_PID")
out=$("${LOAD[@]}" "${GW[@]}" --auth "Bearer $KEY" --conns 64 --duration "$DURATION"); echo "through gateway: $out"
after=$(ticks "$REG_PID")
n=$(echo "$out" | sed -E 's/.*requests=([0-9]+).*/\1/')
echo "server CPU per proxied request (one core): $(python3 -c "print(f'{($after-$before)/$HZ/$n*1000:.3f} ms')")"
echo "serve RSS after max load: $(rss "$REG_PID")"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
