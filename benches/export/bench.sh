#!/usr/bin/env bash
# Export and import of N prompts × V versions (default 10,000 × 5) with the release
# `prompt-registry` binary: import into an empty database, import again (a no-op),
# export, on SQLite and on Postgres, then import through a server (`--url`). Prints
# each step's wall time and peak resident memory (GNU time), for BENCHMARKS.md.
#
#   benches/export/bench.sh            # SQLite, Postgres and --url
#   N=1000 V=5 benches/export/bench.sh # smaller
#
# Needs: a release build (`cargo build --release -p prompt-http`), /usr/bin/time,
# Postgres at $PG_ADMIN_URL (a database `bench_export` is dropped and created).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-10000}
V=${V:-5}
BIN=${BIN:-target/release/prompt-registry}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=${WORK:-$(mktemp -d)}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p prompt-http" >&2; exit 2; }

echo "# $N prompts × $V versions, work dir $WORK"
python3 - "$WORK/tree" "$N" "$V" <<'PY'
import os, sys
root, n, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    team = f"team{i % 100:02d}"
    os.makedirs(os.path.join(root, team), exist_ok=True)
    lines = [f"name: {team}/prompt{i:05d}", f"description: Prompt {i} of the benchmark",
             "tags: [bench]", "versions:"]
    for k in range(1, v + 1):
        lines += [f"- version: {k}", "  template: |",
                  f"    You are assistant {i}, revision {k}. Answer {{{{question}}}} for",
                  "    {{customer}} in a friendly tone, in at most {{limit}} words.",
                  "  config:", "    model: gpt-4o-mini", f"    temperature: 0.{k}",
                  f"  commit_message: revision {k}"]
    lines += ["labels:", f"  production: {max(1, v - 1)}", f"  staging: {v}"]
    with open(os.path.join(root, team, f"prompt{i:05d}.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
PY
echo "tree: $(du -sh "$WORK/tree" | cut -f1) in $(find "$WORK/tree" -name '*.yaml' | wc -l) files"

# Run "$@" under GNU time; print "<label>: <seconds> s, peak RSS <MiB> MiB".
measure() {
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err" || {
    echo "$label failed:"; tail -5 "$WORK/out" "$WORK/err"; exit 1; }
  read -r secs kib < "$WORK/time"
  printf '%-34s %7.2f s, peak RSS %5d MiB   (%s)\n' "$label:" "$secs" $((kib / 1024)) \
    "$(tail -1 "$WORK/out" | cut -c1-60)"
}

run_db() {
  local name=$1 url=$2
  measure "$name import (empty database)" env DATABASE_URL="$url" "$BIN" import "$WORK/tree"
  measure "$name import again (no-op)" env DATABASE_URL="$url" "$BIN" import "$WORK/tree"
  rm -rf "$WORK/out-$name"
  measure "$name export" env DATABASE_URL="$url" "$BIN" export "$WORK/out-$name"
  measure "$name export heads only" env DATABASE_URL="$url" "$BIN" export --heads "$WORK/heads-$name"
}

run_db sqlite "sqlite://$WORK/bench.db"

psql -q "$PG_ADMIN_URL" -c 'DROP DATABASE IF EXISTS bench_export' -c 'CREATE DATABASE bench_export'
run_db postgres "${PG_ADMIN_URL%/*}/bench_export"

# Through a server: the CLI sends the tree to POST /api/v1/import in one request.
PORT=${PORT:-18790}
PROMPT_REGISTRY_ADDR=127.0.0.1:$PORT PROMPT_REGISTRY_RATE_LIMIT=0 \
  DATABASE_URL="sqlite://$WORK/server.db" "$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
KEY=$(grep -A1 "first admin API key" "$WORK/server.log" | tail -1)
[ -n "$KEY" ] || KEY=$(head -1 "$WORK/server.log")
measure "--url import (client)" env PROMPT_REGISTRY_API_KEY="$KEY" "$BIN" import "$WORK/tree" --url "http://127.0.0.1:$PORT"
echo "server peak RSS after the import: $(( $(grep VmHWM /proc/$SERVER/status | awk '{print $2}') / 1024 )) MiB"
rm -rf "$WORK/out-url"
measure "--url export (client)" env PROMPT_REGISTRY_API_KEY="$KEY" "$BIN" export "$WORK/out-url" --url "http://127.0.0.1:$PORT"
