#!/usr/bin/env bash
# Retention on the database load.sh filled: drop the oldest month whole (what the
# retention task does on Postgres when every project in it is past its retention),
# then delete the next month in batches of 5,000 (what it does otherwise, and on
# SQLite), each while 4 pgbench clients insert runs one per transaction; prints the
# time of each and the writers' latency during it, against a baseline without
# retention.
set -euo pipefail
URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=${DB:-prompt_retention_bench}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
months=($(psql -At "$URL/$DB" -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'runs'::regclass AND c.relname <> 'runs_default' ORDER BY 1"))
# The two oldest months, or the ones named (DROP_MONTH, DELETE_MONTH: runs_pYYYYMM).
drop_month=${DROP_MONTH:-${months[0]}}
delete_month=${DELETE_MONTH:-${months[1]}}
# The end of the month deleted in batches: its runs are all before it.
delete_end=$(psql -At "$URL/$DB" -c "SELECT (to_date(substr('$delete_month', 7), 'YYYYMM') + interval '1 month')::timestamp AT TIME ZONE 'UTC'")

writers() { # $1: name, $2: seconds
  (cd "$out" && pgbench -n -c 4 -j 2 -T "$2" -f "$here/insert.sql" -l --log-prefix="$1" "$URL/$DB" >/dev/null 2>&1)
}
latency() { # $1: name[, $2 $3: window in ns since the epoch]; per-transaction latencies
  # in µs (column 3; columns 5 and 6: when it ended) → ms figures
  cat "$out/$1"*.* | awk -v from="${2:-0}" -v to="${3:-0}" '{t = $5 * 1e9 + $6 * 1e3}
    to == 0 || (t >= from && t <= to) {print $3}' | sort -n | awk '{a[NR]=$1} END {
    printf "%d inserts, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
      NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[int(NR*0.999)]/1000, a[NR]/1000}'
}

echo "== baseline: writers alone (20 s)"
writers base 20; latency base

echo "== drop month $drop_month whole: $(psql -At "$URL/$DB" -c "SELECT count(*) FROM $drop_month") runs"
writers drop 20 &
sleep 5
t0=$(date +%s%N)
psql -q -v ON_ERROR_STOP=1 "$URL/$DB" <<SQL
\\timing on
BEGIN;
SET LOCAL lock_timeout = '500ms';
LOCK TABLE runs IN ACCESS EXCLUSIVE MODE;
DROP TABLE $drop_month;
COMMIT;
SQL
t1=$(date +%s%N)
echo "partition drop: $(( (t1 - t0) / 1000000 )) ms"
wait; echo "writers over the 20 s around the drop:"; latency drop

rows=$(psql -At "$URL/$DB" -c "SELECT count(*) FROM $delete_month")
echo "== delete month $delete_month in batches of 5,000 (per project, as the task does): $rows runs"
batches=$(( rows / 5000 / 20 + 2 ))
script=$out/delete.sql
: > "$script"
for p in $(seq 0 19); do
  pid=$(printf '00000000-0000-0000-0000-0000000000%02d' "$p")
  for _ in $(seq 1 "$batches"); do
    echo "DELETE FROM runs WHERE (id, created_at) IN (SELECT id, created_at FROM runs WHERE project_id = '$pid' AND created_at < '$delete_end' ORDER BY created_at, id LIMIT 5000);" >> "$script"
  done
done
t0=$(date +%s%N)
(psql -q -v ON_ERROR_STOP=1 "$URL/$DB" -f "$script" >/dev/null; date +%s%N > "$out/delete.end") &
dpid=$!
i=0
while kill -0 $dpid 2>/dev/null; do writers "delete$i" 5; i=$((i + 1)); done
wait $dpid
t1=$(cat "$out/delete.end")
echo "batched delete: $(( (t1 - t0) / 1000000 )) ms, left: $(psql -At "$URL/$DB" -c "SELECT count(*) FROM $delete_month")"
echo "writers during the delete:"; latency delete "$t0" "$t1"
rm -rf "$out"
