#!/usr/bin/env bash
# Benchmark: every dashboard page with 10⁶ customers in the store (issue 19), on SQLite and on
# PostgreSQL, each page beside the JSON API call that reads the same data.
#
#   bench/dashboard.sh                 # CUSTOMERS=1000000 REPS=20 BACKENDS="sqlite postgres"
#
# The store is built once per backend: `kanta generate --customers N --feedback` over the two
# years up to END (default 2026-11-30; about 2.2 orders and 0.6 survey answers per customer),
# imported with `kanta import orders|feedback`, the journey `promo` applied and every customer
# entered into it 45 days before END (one in ten held out, each run's first order in its window
# its conversion — the store of bench/uplift.sh), then `kanta score` and a saved segment.
# PostgreSQL runs under scripts/with-postgres with fsync on (KANTA_PG_DURABLE=1), a fresh
# server each run (its store is built again: several minutes at 10⁶ customers).
#
# Timed: `kanta serve` (scheduler and journeys off) on loopback; a session logged in through
# the form; each page requested REPS times after two warm-up requests, with curl's time_total
# (server time + loopback). Prints per page the median and 95th percentile, the API twin's
# median, and whether the page met the 200 ms budget. Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=bench/work
mkdir -p "$WORK"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }

[ -n "${KANTA:-}" ] || cargo build --release --quiet -p kanta-cli
KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
KANTA=$(realpath "$KANTA")
end=${END:-2026-11-30}
start=$(date -u -d "$end - 2 years" +%Y-%m-%d)
n=${CUSTOMERS:-1000000}
reps=${REPS:-20}
backends=${BACKENDS:-sqlite postgres}
log="$WORK/dashboard-$n.csv"
feedback="$WORK/dashboard-$n-feedback.csv"
entered=$(( ($(date -u -d "$end - 45 days" +%s)) * 1000000 ))
window=$(( 30 * 86400 * 1000000 ))
if [ ! -s "$log" ] || [ ! -s "$feedback" ]; then
  "$KANTA" generate --customers "$n" --start "$start" --end "$end" --seed 5 --feedback "$feedback" --out "$log" --quiet
fi
mkdir -p "$WORK/dashboard-journey"
cat >"$WORK/dashboard-journey/promo.yaml" <<'EOF'
name: promo
trigger: { stage_becomes: slipping }
holdout: 10%
goal: { event: order.created, within: 30d }
steps:
  - send_email: { subject: "We miss you", html: "<p>Come back</p>" }
  - wait: 7d
  - branch:
      if: "orders >= 3"
      then: exit
      else:
        - send_email: { subject: "Still thinking of you", html: "<p>10% off</p>" }
EOF
# Every customer enters promo 45 days before END; the first order in the window converts.
runs_sql() {
  cat <<EOF
INSERT INTO journey_runs (journey, version, customer_id, run_key, status, step, context, entered_at, updated_at,
                          ended_at, arm)
SELECT 'promo', 1, id, '', CASE WHEN (id * 2654435761) % 1000 < 100 THEN 'held_out' ELSE 'completed' END, '0', '{}',
       $entered, $entered, $entered,
       CASE WHEN (id * 2654435761) % 1000 < 100 THEN 'control' ELSE 'treatment' END
FROM customers ORDER BY id;
INSERT INTO journey_conversions (run_id, journey, customer_id, time, source, ref_id, revenue, created_at)
SELECT r.id, 'promo', r.customer_id, MIN(o.time), 'order', NULL, NULL, $entered
FROM journey_runs r JOIN orders o ON o.customer_id = r.customer_id
WHERE r.journey = 'promo' AND o.time >= $entered AND o.time < $entered + $window AND o.status = 'completed'
GROUP BY r.id, r.customer_id;
EOF
}

# Fill a store (URL) once; `sql` runs SQL on it.
fill() {
  local url=$1 sql=$2
  "$KANTA" import orders "$log" --currency EUR --db "$url" --quiet
  "$KANTA" import feedback "$feedback" --db "$url" >/dev/null
  "$KANTA" journeys apply "$WORK/dashboard-journey/promo.yaml" --db "$url" >/dev/null
  runs_sql | $sql
  "$KANTA" score --db "$url" >/dev/null
}

median_p95() { sort -g | awk '{v[NR] = $1} END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
  p = v[int(0.95 * NR + 0.999)]; printf "%.1f %.1f\n", m * 1000, p * 1000 }'; }

# Times every page against a running store URL.
measure() {
  local url=$1 label=$2 port=18093 base
  base="http://127.0.0.1:$port"
  cat >"$WORK/dashboard.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
[scoring]
every = "off"
[journeys]
enabled = false
EOF
  local token
  token=$("$KANTA" token create --scope admin --db "$url" 2>/dev/null | tail -n 1)
  KANTA_CONFIG="$WORK/dashboard.toml" "$KANTA" serve --db "$url" >"$WORK/dashboard-serve.log" 2>&1 &
  local server=$!
  trap 'kill $server 2>/dev/null || true' RETURN
  until curl -sf "$base/healthz" >/dev/null; do sleep 0.2; done
  curl -s -X POST "$base/v1/segments" -H "Authorization: Bearer $token" \
    -d '{"name": "valuable slipping", "expression": "clv_12m > 100 and p_alive < 0.5"}' >/dev/null
  local jar="$WORK/dashboard-cookies"
  rm -f "$jar"
  local csrf
  csrf=$(curl -s -c "$jar" "$base/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -n 1)
  curl -s -b "$jar" -c "$jar" -o /dev/null -H "Origin: $base" --data-urlencode "token=$token" \
    --data-urlencode "csrf=$csrf" --data-urlencode "next=/" "$base/login"
  local segment customer
  segment=$(curl -s "$base/v1/segments" -H "Authorization: Bearer $token" | sed -n 's/.*"id":\([0-9]*\),"name":"valuable slipping".*/\1/p')
  customer=$(curl -s "$base/v1/customers?limit=1" -H "Authorization: Bearer $token" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -n 1)
  echo
  echo "$label, $n customers: per page over $reps requests (ms); the API call reading the same data beside it"
  printf "  %-38s %8s %8s   %-34s %8s  %s\n" page median p95 "API twin" median "≤ 200 ms?"
  while IFS='|' read -r page twin; do
    page=${page//SEGMENT/$segment}; page=${page//CUSTOMER/$customer}
    twin=${twin//SEGMENT/$segment}; twin=${twin//CUSTOMER/$customer}
    for _ in 1 2; do curl -s -b "$jar" -o /dev/null "$base$page"; done
    # A report computed in the background: time the page once it is there.
    local waited=0
    # (The body is read whole: `curl | grep -q` would stop curl early, and pipefail would end the loop.)
    while [[ $(curl -s -b "$jar" "$base$page") == *"being computed"* ]]; do
      sleep 2; waited=$((waited + 2))
    done
    [ "$waited" = 0 ] || echo "  ($page: computed in the background in about ${waited} s)"
    local status
    status=$(curl -s -b "$jar" -o /dev/null -w '%{http_code}' "$base$page")
    read -r pm pp < <(for _ in $(seq 1 "$reps"); do curl -s -b "$jar" -o /dev/null -w '%{time_total}\n' "$base$page"; done | median_p95)
    local tm="–"
    if [ -n "$twin" ]; then
      # A twin slower than two seconds is timed once (the uplift report takes minutes).
      local first
      first=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$base$twin")
      if awk -v t="$first" 'BEGIN { exit !(t > 2) }'; then
        tm=$(awk -v t="$first" 'BEGIN { printf "%.1f (1×)", t * 1000 }')
      else
        read -r tm _ < <(for _ in $(seq 1 "$reps"); do
          curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$base$twin"; done | median_p95)
      fi
    fi
    local verdict
    verdict=$(awk -v p="$pp" -v s="$status" 'BEGIN { if (s != 200) print "HTTP " s; else print (p <= 200 ? "yes" : "no") }')
    printf "  %-38s %8s %8s   %-34s %8s  %s\n" "$page" "$pm" "$pp" "${twin:-–}" "$tm" "$verdict"
  done <<'EOF'
/|/v1/scores/runs?limit=1
/customers|/v1/customers?limit=50
/customers?stage=lapsing&risk=high|
/customers?q=C00012|
/customers?segment=SEGMENT|/v1/segments/SEGMENT/customers?limit=50
/customers?sort=value|
/customers?sort=risk&stage=loyal|
/customers/CUSTOMER|/v1/customers/CUSTOMER
/segments|/v1/segments
/segments/new|
/segments/SEGMENT|/v1/segments/SEGMENT/transitions?limit=50
/journeys|/v1/journeys
/journeys/promo|/v1/journeys/promo
/journeys/promo/uplift|/v1/journeys/promo/report
/feedback|/v1/insights/feedback
/settings|/v1/webhooks
EOF
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

if [ "${1:-}" = "--inside-postgres" ]; then
  # Re-run by the loop below under scripts/with-postgres: a fresh server, a fresh database.
  url="${KANTA_TEST_POSTGRES_URL%/*}/kanta_dashboard"
  psql -q "$KANTA_TEST_POSTGRES_URL" -c "CREATE DATABASE kanta_dashboard"
  echo "building the PostgreSQL store…"
  fill "$url" "psql -q $url"
  # What autovacuum does on a live server: without it, a million runs inserted a moment ago are
  # not yet all-visible and every count reads the table beside its index.
  psql -q "$url" -c "VACUUM ANALYZE"
  measure "$url" "PostgreSQL"
  exit 0
fi

for backend in $backends; do
  case $backend in
    sqlite)
      db="$WORK/dashboard-$n.db"
      if [ ! -s "$db" ]; then
        echo "building $db (once)…"
        rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
        fill "sqlite://$db.tmp" "sqlite3 $db.tmp"
        sqlite3 "$db.tmp" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        mv "$db.tmp" "$db"
      fi
      measure "sqlite://$db" "SQLite"
      ;;
    postgres)
      KANTA="$KANTA" KANTA_PG_DURABLE=1 scripts/with-postgres bash "$0" --inside-postgres
      ;;
  esac
done
