#!/usr/bin/env bash
# Benchmark: `kanta score` on a PostgreSQL store, pushed down (the default) vs `--in-memory`
# (every order read out, as on SQLite), on the same store in one run.
#
#   bench/score-pg.sh [CUSTOMERS]     default 1000000 (10,006,027 orders, the shape `issue` of
#                                     bench/score.sh, with their product lines)
#
# Starts a throw-away PostgreSQL server with fsync on (scripts/with-postgres, KANTA_PG_DURABLE=1)
# unless KANTA_TEST_POSTGRES_URL names one, imports the generated shop once with `kanta import
# orders --order-col none` (one order per line, the lines' categories stored), VACUUM ANALYZE,
# scores once (the first run), then RUNS (3) rounds of a rescoring run each way, alternating
# which goes first, under /usr/bin/time -v. Prints median wall times, kanta's peak RSS, the
# ratio pushed / in memory, what the push-down moved (from its own line) against the size of
# the columns the in-memory run reads, and checks that both runs store the same stages. Run by
# hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KANTA_TEST_POSTGRES_URL:-}" ]; then
  KANTA_PG_DURABLE=1 exec scripts/with-postgres bash "$0" "$@"
fi
WORK=bench/work
mkdir -p "$WORK"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
KANTA=target/release/kanta
customers=${1:-1000000}
runs=${RUNS:-3}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

f="$WORK/shop-$customers.csv"
[ "$customers" = 1000000 ] && f="$WORK/shop-1m.csv"
[ -s "$f" ] || "$KANTA" generate --customers "$customers" --start 2011-01-01 --end 2024-12-31 --seed 1 --out "$f"
db="${KANTA_TEST_POSTGRES_URL%/*}/kanta_bench_score"
psql -q "$KANTA_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS kanta_bench_score" -c "CREATE DATABASE kanta_bench_score"
echo "importing $f…"
/usr/bin/time -v "$KANTA" import orders "$f" --order-col none --currency EUR --db "$db" --quiet 2>"$WORK/pg-import.time"
psql -q "$db" -c "VACUUM ANALYZE"
printf 'import: %.1f s; store: %s orders, %s lines\n' "$(wall "$WORK/pg-import.time")" \
  "$(psql -At "$db" -c 'SELECT COUNT(*) FROM orders')" "$(psql -At "$db" -c 'SELECT COUNT(*) FROM order_lines')"
# What the in-memory read receives: its four columns as the text the database prints them in,
# and the categorised lines' order ids and categories.
read_bytes=$(psql -At "$db" -c "SELECT (SELECT SUM(octet_length(customer_id::text) + octet_length((time / 1000000)::text) \
  + octet_length(amount::text) + octet_length(id::text) + 4) FROM orders WHERE status <> 'cancelled') \
  + (SELECT SUM(octet_length(order_id::text) + octet_length(category) + 2) FROM order_lines WHERE category IS NOT NULL)")

/usr/bin/time -v "$KANTA" score --db "$db" >"$WORK/pg-score-first.txt" 2>"$WORK/pg-score-first.time"
printf 'first run (pushed down): %.2f s\n' "$(wall "$WORK/pg-score-first.time")"
for r in $(seq 1 "$runs"); do
  order="push memory"
  [ $((r % 2)) = 0 ] && order="memory push"
  for way in $order; do
    flag=""
    [ "$way" = memory ] && flag="--in-memory"
    # shellcheck disable=SC2086
    /usr/bin/time -v "$KANTA" score --db "$db" $flag >"$WORK/pg-score-$way.$r.txt" 2>"$WORK/pg-score-$way.$r.time"
  done
  printf 'round %d (%s first): pushed down %.2f s, in memory %.2f s\n' "$r" "${order%% *}" \
    "$(wall "$WORK/pg-score-push.$r.time")" "$(wall "$WORK/pg-score-memory.$r.time")"
done
p=$(for r in $(seq 1 "$runs"); do wall "$WORK/pg-score-push.$r.time"; done | median)
m=$(for r in $(seq 1 "$runs"); do wall "$WORK/pg-score-memory.$r.time"; done | median)
printf '\nkanta score on PostgreSQL, %s customers (medians of %d rescoring runs)\n%-28s %8s %8s %8s\n' \
  "$customers" "$runs" "" wall_s rss_MB ratio
printf '%-28s %8.2f %8d %8s\n' "in memory (--in-memory)" "$m" "$(rss "$WORK/pg-score-memory.1.time")" 1.00
printf '%-28s %8.2f %8d %8.2f\n' "pushed down" "$p" "$(rss "$WORK/pg-score-push.1.time")" "$(awk -v x="$p" -v y="$m" 'BEGIN {print x / y}')"
sed 's/^/    pushed:    /' "$WORK/pg-score-push.1.txt"
sed 's/^/    in memory: /' "$WORK/pg-score-memory.1.txt"
printf '    the in-memory read receives about %s bytes\n' "$read_bytes"
a=$(grep '^stages:' "$WORK/pg-score-push.1.txt"); b=$(grep '^stages:' "$WORK/pg-score-memory.1.txt")
if [ "$a" = "$b" ]; then echo "    check: the same stages both ways"; else echo "    check: DIFFERENT stages"; exit 1; fi
