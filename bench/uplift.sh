#!/usr/bin/env bash
# Benchmark: a journey's uplift report over 10⁶ entries (issue 18), beside the same statistics
# computed with numpy/scipy from the same rows.
#
#   bench/uplift.sh
#
# The store is built once into bench/work/uplift-N.db (N = CUSTOMERS, default 10⁶): `kanta
# generate --customers N` over the two years up to END (default 2026-11-30), imported with `kanta
# import orders`; journeys/examples of the report's kind (`promo`: holdout 10%, goal order.created
# within 30d) applied; then, in SQL, every customer enters `promo` 45 days before END (one in
# ten held out, by a multiplicative hash of the internal id) and each run's first order in its
# window is its conversion. So every entry has matured, about a third of them convert, and the
# pre-entry year has revenue for CUPED to use.
#
# Timed, RUNS rounds each (default 3, medians, under /usr/bin/time -v):
# - kanta: `kanta journeys report promo --json --now END` — reads the first entries with their
#   revenue after and before entry from the store, then conversion (Wald, Newcombe), revenue
#   (Welch, a 2,000-resample bootstrap), the same with CUPED (a second bootstrap), power and
#   the curves;
# - peer (bench/uplift.py, the venv of bench/models.sh: numpy 1.23, pandas 1.5, scipy): the same
#   SQL through Python's sqlite3, then the same statistics with numpy (bootstrap: 2,000
#   resamples of each arm with numpy's Generator, in chunks) and scipy's t quantile.
# Prints wall times, peak RSS, the ratio, and both tools' estimates side by side (the point
# estimates and Welch intervals must agree to 1e-9; the bootstraps within their Monte Carlo
# error). Run by hand; never in CI. CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=bench/work
mkdir -p "$WORK"
[ -x /usr/bin/time ] && command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq time sqlite3 >/dev/null; }
if [ ! -x "$WORK/venv-lifetimes/bin/python" ]; then
  python3 -m venv "$WORK/venv-lifetimes"
  "$WORK/venv-lifetimes/bin/pip" install -q "lifetimes==0.11.3" "pandas<2" "numpy<1.24"
fi
PY="$WORK/venv-lifetimes/bin/python"

[ -n "${KANTA:-}" ] || cargo build --release --quiet -p kanta-cli
KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

end=${END:-2026-11-30}
start=$(date -u -d "$end - 2 years" +%Y-%m-%d)
n=${CUSTOMERS:-1000000}
runs=${RUNS:-3}
log="$WORK/uplift-$n.csv"
db="$WORK/uplift-$n.db"
entered=$(( ($(date -u -d "$end - 45 days" +%s)) * 1000000 ))
window=$(( 30 * 86400 * 1000000 ))
if [ ! -s "$db" ]; then
  [ -s "$log" ] || "$KANTA" generate --customers "$n" --start "$start" --end "$end" --seed 5 --out "$log" --quiet
  echo "building $db (once): import, journey, entries and conversions…"
  rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
  "$KANTA" import orders "$log" --currency EUR --db "sqlite://$db.tmp" --quiet
  mkdir -p "$WORK/uplift-journey"
  cat >"$WORK/uplift-journey/promo.yaml" <<'EOF'
name: promo
trigger: { stage_becomes: slipping }
holdout: 10%
goal: { event: order.created, within: 30d }
steps:
  - send_email: { subject: "We miss you", html: "<p>Come back</p>" }
EOF
  "$KANTA" journeys apply "$WORK/uplift-journey/promo.yaml" --db "sqlite://$db.tmp" >/dev/null
  sqlite3 "$db.tmp" <<EOF
PRAGMA journal_mode = WAL;
BEGIN;
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
GROUP BY r.id;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOF
  mv "$db.tmp" "$db"
fi
echo "store: $(sqlite3 "$db" "SELECT COUNT(*) FROM journey_runs") entries, $(sqlite3 "$db" "SELECT COUNT(*) FROM journey_conversions") conversions, $(sqlite3 "$db" "SELECT COUNT(*) FROM orders") orders"

now=$(date -u -d "$end" +%Y-%m-%dT00:00:00Z)
for i in $(seq 1 "$runs"); do
  /usr/bin/time -v "$KANTA" journeys report promo --json --now "$now" --db "sqlite://$db" >"$WORK/uplift-kanta.json" 2>"$WORK/uplift-kanta.$i.time"
  /usr/bin/time -v "$PY" bench/uplift.py "$db" "$entered" "$window" >"$WORK/uplift-peer.json" 2>"$WORK/uplift-peer.$i.time"
done
k=$(for i in $(seq 1 "$runs"); do wall "$WORK/uplift-kanta.$i.time"; done | median)
p=$(for i in $(seq 1 "$runs"); do wall "$WORK/uplift-peer.$i.time"; done | median)
echo "uplift report, $n entries (median of $runs):"
echo "  kanta journeys report: ${k} s, peak RSS $(rss "$WORK/uplift-kanta.1.time") MB"
echo "  numpy/scipy peer:      ${p} s, peak RSS $(rss "$WORK/uplift-peer.1.time") MB"
awk -v k="$k" -v p="$p" 'BEGIN { printf "  peer / kanta: %.1f×\n", p / k }'
"$PY" bench/uplift.py --compare "$WORK/uplift-kanta.json" "$WORK/uplift-peer.json"
