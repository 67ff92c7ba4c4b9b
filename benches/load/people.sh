#!/usr/bin/env bash
# People benchmarks of issue 15 (results go to BENCHMARKS.md by hand):
#  1. authenticated GET /api/v1/prompts/{name}/resolve with a user access token
#     (JWT + X-Project) vs an API key, interleaved rounds in the same server;
#  2. the cost of one sign-in (argon2id), sequential;
#  3. a 1,000-attempt credential-stuffing loop against 20 accounts, first from one
#     address (127.0.0.1), then spread over 50 addresses (127.0.1.x), while another
#     client (127.0.0.2) keeps resolving: who is locked out, and whether the others
#     are still served.
# Needs: wrk, curl, python3. Usage: DURATION=8s ./benches/load/people.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8s}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

cargo build --release -q --bin prompt-registry
BIN=target/release/prompt-registry
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=18090
BASE=http://127.0.0.1:$PORT
DATABASE_URL="sqlite://$WORK/people.db" PROMPT_REGISTRY_ADDR="127.0.0.1:$PORT" PROMPT_REGISTRY_RATE_LIMIT=0 \
  PROMPT_REGISTRY_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve > "$WORK/key" 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
KEY=$(head -1 "$WORK/key")
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $(date -u +%F)"

PW="violet tugboat ferments quietly"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  "$BASE/api/v1/prompts/bench%2Fresolve/versions" \
  -d '{"template": "You are {{ persona }}. Answer {{ question }} briefly and cite the docs.", "labels": ["production"]}' >/dev/null
curl -sf -H "Content-Type: application/json" "$BASE/api/auth/register" \
  -d "{\"email\": \"owner@example.com\", \"password\": \"$PW\"}" >/dev/null
TOKEN=$(curl -sf -H "Content-Type: application/json" "$BASE/api/auth/login" \
  -d "{\"email\": \"owner@example.com\", \"password\": \"$PW\"}" | json "['access_token']")

cat > "$WORK/key.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
cat > "$WORK/jwt.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["X-Project"] = "default"
LUA
URL="$BASE/api/v1/prompts/bench%2Fresolve/resolve"
curl -sf -H "Authorization: Bearer $TOKEN" -H "X-Project: default" "$URL" >/dev/null
for round in 1 2 3; do
  for kind in key jwt; do
    echo "-- round $round: resolve with $kind"
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$kind.lua" "$URL" | grep -E "Requests/sec|50%|99%|Non-2xx"
  done
done

echo "-- sign-in cost: 20 sequential logins"
START=$(date +%s%N)
for _ in $(seq 1 20); do
  curl -sf -o /dev/null -H "Content-Type: application/json" "$BASE/api/auth/login" \
    -d "{\"email\": \"owner@example.com\", \"password\": \"$PW\"}"
done
END=$(date +%s%N)
echo "login: $(( (END - START) / 20000000 )) ms per sign-in (curl included)"

echo "-- credential stuffing: 20 accounts, 1,000 attempts from 127.0.0.1"
for i in $(seq 1 20); do
  curl -sf -o /dev/null -H "Content-Type: application/json" "$BASE/api/auth/register" \
    -d "{\"email\": \"user$i@example.com\", \"password\": \"$PW\"}"
done
python3 - "$BASE" "$KEY" <<'PY'
import json, sys, threading, time, urllib.request, http.client
base, key = sys.argv[1], sys.argv[2]
host, port = base.split("//")[1].split(":")
port = int(port)

def post(path, body, source="127.0.0.1", headers=None):
    c = http.client.HTTPConnection(host, port, source_address=(source, 0), timeout=30)
    h = {"Content-Type": "application/json", **(headers or {})}
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse(); r.read(); c.close()
    return r.status

def get(path, source):
    c = http.client.HTTPConnection(host, port, source_address=(source, 0), timeout=30)
    c.request("GET", path, headers={"Authorization": "Bearer " + key})
    t = time.perf_counter(); r = c.getresponse(); r.read(); c.close()
    return r.status, (time.perf_counter() - t) * 1000

stop = False
bystander = []
def other_client():
    while not stop:
        bystander.append(get("/api/v1/prompts/bench%2Fresolve/resolve", "127.0.0.2"))
        time.sleep(0.01)
t = threading.Thread(target=other_client); t.start()
def stuffing(label, source_of):
    counts = {}
    t0 = time.perf_counter()
    def attack(worker):
        for n in range(worker, 1000, 8):
            s = post("/api/auth/login", {"email": f"user{n % 20 + 1}@example.com", "password": f"guess-{n}"},
                     source=source_of(n))
            counts[s] = counts.get(s, 0) + 1
    workers = [threading.Thread(target=attack, args=(w,)) for w in range(8)]
    [w.start() for w in workers]; [w.join() for w in workers]
    elapsed = time.perf_counter() - t0
    legit = post("/api/auth/login", {"email": "user1@example.com", "password": "violet tugboat ferments quietly"}, source="127.0.0.3")
    fresh = post("/api/auth/login", {"email": "owner@example.com", "password": "violet tugboat ferments quietly"}, source="127.0.0.3")
    print(f"{label}: 1000 attempts in {elapsed:.1f} s; answers {dict(sorted(counts.items()))}; "
          f"then from 127.0.0.3 with the right password: an attacked account HTTP {legit}, "
          f"an account not attacked HTTP {fresh}")
stuffing("one address", lambda n: "127.0.0.1")
stuffing("50 addresses", lambda n: f"127.0.1.{n % 50 + 1}")
stop = True; t.join()
ok = [ms for s, ms in bystander if s == 200]
ok.sort()
p = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] if ok else float("nan")
print(f"bystander on 127.0.0.2 during both attacks: {len(ok)}/{len(bystander)} resolves OK, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")
PY
echo "serve RSS at the end: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$PID/status)"
