#!/usr/bin/env bash
# Benchmark: `kanta serve` ingesting orders over HTTP vs a bare bulk insert of the same rows
# into the same database, on SQLite and on PostgreSQL, with durability on.
#
#   bench/ingest.sh [ORDERS] [CUSTOMERS]      (default 1,000,000 orders, 200,000 customers)
#
# API: `kanta serve` (release build) on a fresh store; a load generator on loopback
# (crates/kanta-api/examples/ingest_load.rs, bodies built before the clock starts) posts the
# orders in batches of BATCH (default 1,000) with CONCURRENCY (default 4) requests in flight.
# Each order has one line and names one of CUSTOMERS customers, created on first sight.
# Reference, same run: the same customers, orders and lines inserted into a fresh database
# with the same schema — the sqlite3 CLI in one transaction (WAL, synchronous=FULL, the mode
# kanta uses), and COPY for PostgreSQL (fsync on). Prints rows/s and the kanta/reference ratio.
# A/B: KANTA_B=/path/to/another/kanta also runs the SQLite API side with that binary, alternating
# with this build twice (A B A B) on fresh stores, and prints each run's rate and the B/A ratio.
# Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ORDERS=${1:-1000000}
CUSTOMERS=${2:-200000}
BATCH=${BATCH:-1000}
CONCURRENCY=${CONCURRENCY:-4}
WORK=bench/work/ingest
rm -rf "$WORK" && mkdir -p "$WORK"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
scripts/install-test-deps >/dev/null

cargo build --release --quiet -p kanta-cli
cargo build --release --quiet -p kanta-api --example ingest_load
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET = /* ]] || TARGET=$PWD/$TARGET
KANTA=${KANTA:-$TARGET/release/kanta}
KANTA_B=${KANTA_B:-}
LOAD=$TARGET/release/examples/ingest_load

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

# Runs the API side against $1 (a store URL); prints orders/s.
api_run() { # store-url [kanta binary]
  local db=$1 bin=${2:-$KANTA} token log addr pid out
  token=$("$bin" token create --scope ingest --db "$db" 2>/dev/null | tail -n 1)
  log=$WORK/serve.log
  "$bin" serve --db "$db" --listen 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  addr=$(grep -o 'http://[0-9.:]*' "$log" | head -n 1)
  out=$("$LOAD" post "$addr" "$token" "$ORDERS" "$CUSTOMERS" "$BATCH" "$CONCURRENCY")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$out" | awk '{print $3}'
}

report() { # backend api_rate ref_rate
  awk -v b="$1" -v a="$2" -v r="$3" 'BEGIN { printf "%-10s kanta serve %9.0f orders/s   bare insert %9.0f orders/s   ratio %.2f (target >= 0.50)\n", b, a, r, a / r }'
}

echo "== $ORDERS orders, $CUSTOMERS customers, batches of $BATCH, $CONCURRENCY in flight"

# --- SQLite
if [ -n "$KANTA_B" ]; then
  for round in 1 2; do
    a=$(api_run "sqlite://$WORK/ab-a$round.db")
    b=$(api_run "sqlite://$WORK/ab-b$round.db" "$KANTA_B")
    awk -v r="$round" -v a="$a" -v b="$b" 'BEGIN { printf "A/B round %d, SQLite: this build %.0f orders/s, KANTA_B %.0f orders/s, B/A %.2f\n", r, a, b, b / a }'
  done
fi
api=$(api_run "sqlite://$WORK/api.db")
sqlite3 "$WORK/api.db" "SELECT 'sqlite api rows: ' || (SELECT COUNT(*) FROM customers) || ' customers, ' || (SELECT COUNT(*) FROM orders) || ' orders, ' || (SELECT COUNT(*) FROM order_lines) || ' lines'"
"$KANTA" token create --scope read --db "sqlite://$WORK/ref.db" >/dev/null 2>&1   # the same schema, migrated
"$LOAD" sqlite-sql "$ORDERS" "$CUSTOMERS" >"$WORK/ref.sql"
t0=$(now); sqlite3 "$WORK/ref.db" <"$WORK/ref.sql" >/dev/null; t1=$(now)
sqlite3 "$WORK/ref.db" "SELECT 'sqlite ref rows: ' || (SELECT COUNT(*) FROM customers) || ' customers, ' || (SELECT COUNT(*) FROM orders) || ' orders, ' || (SELECT COUNT(*) FROM order_lines) || ' lines'"
SQLITE_LINE=$(report sqlite "$api" "$(rate "$ORDERS" "$t0" "$t1")")

# --- PostgreSQL (a throw-away server with fsync on)
export WORK ORDERS CUSTOMERS BATCH CONCURRENCY KANTA LOAD
PG_LINE=$(KANTA_PG_DURABLE=1 scripts/with-postgres bash -c '
  set -euo pipefail
  base=${KANTA_TEST_POSTGRES_URL%/*}
  psql -q "$KANTA_TEST_POSTGRES_URL" -c "CREATE DATABASE api" -c "CREATE DATABASE ref"
  '"$(declare -f now rate api_run report)"'
  api=$(api_run "$base/api")
  psql -tA "$base/api" -c "SELECT '"'"'postgres api rows: '"'"' || (SELECT COUNT(*) FROM customers) || '"'"' customers, '"'"' || (SELECT COUNT(*) FROM orders) || '"'"' orders'"'"'" >&2
  "$KANTA" token create --scope read --db "$base/ref" >/dev/null 2>&1
  chmod 755 "$WORK"; "$LOAD" pg-csv "$ORDERS" "$CUSTOMERS" "$WORK"
  t0=$(now)
  psql -q "$base/ref" -v ON_ERROR_STOP=1 \
    -c "BEGIN" \
    -c "\copy customers (external_id, created_at, updated_at) FROM '"'"'$WORK/customers.csv'"'"' CSV" \
    -c "\copy orders (external_id, customer_id, time, amount, currency, status, lines_digest) FROM '"'"'$WORK/orders.csv'"'"' CSV" \
    -c "\copy order_lines (order_id, line_no, product, category, quantity, price) FROM '"'"'$WORK/lines.csv'"'"' CSV" \
    -c "COMMIT"
  t1=$(now)
  report postgres "$api" "$(rate "$ORDERS" "$t0" "$t1")"
')
echo "$SQLITE_LINE"
echo "$PG_LINE"
