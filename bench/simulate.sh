#!/usr/bin/env bash
# Benchmark: `kanta journeys simulate` over 10⁶ customers for 30 days (issue 18), beside the
# same projection of a `stage_becomes: lost` journey in numpy (bench/simulate.py).
#
#   bench/simulate.sh
#
# The store is bench/work/simulate-N.db (N = CUSTOMERS, default 10⁶): `kanta generate
# --customers N` over the two years up to END (default 2026-11-30; the CSV of bench/uplift.sh is
# reused when it is there), imported with `kanta import orders`, then scored once with `kanta
# score` (as of today: the shop's last month is recent history).
#
# Timed, RUNS rounds each (default 3, medians, under /usr/bin/time -v):
# - kanta: `kanta journeys simulate journeys/win-back.yaml --days 30 --json` (10 draws, the
#   default): reads and analyses every purchase, rebuilds the fitted model from the scoring
#   run, draws every customer's next 30 days ten times with the daily rescoring and the moving
#   lapse threshold, walks the entrants' runs and plans their messages;
# - peer (bench/simulate.py, the venv of bench/models.sh with scipy): the per-customer summary in
#   SQL, then ten numpy draws of every customer's purchases and the days they become lost under
#   a fixed lapse threshold — the core of the projection, without runs, messages or the moving
#   threshold.
# Prints wall times, peak RSS, the ratio and both entry counts. Run by hand; never in CI.
# CARGO_TARGET_DIR is honoured.
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
"$PY" -c "import scipy" 2>/dev/null || "$WORK/venv-lifetimes/bin/pip" install -q scipy

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
db="$WORK/simulate-$n.db"
if [ ! -s "$db" ]; then
  [ -s "$log" ] || "$KANTA" generate --customers "$n" --start "$start" --end "$end" --seed 5 --out "$log" --quiet
  echo "building $db (once): import and score…"
  rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
  "$KANTA" import orders "$log" --currency EUR --db "sqlite://$db.tmp" --quiet
  "$KANTA" score --db "sqlite://$db.tmp" --quiet
  sqlite3 "$db.tmp" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  mv "$db.tmp" "$db"
fi
echo "store: $(sqlite3 "$db" "SELECT COUNT(*) FROM customers") customers, $(sqlite3 "$db" "SELECT COUNT(*) FROM orders") orders"

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
now_micros=$(( $(date -u -d "$now" +%s) * 1000000 ))
for i in $(seq 1 "$runs"); do
  /usr/bin/time -v "$KANTA" journeys simulate journeys/win-back.yaml --days 30 --json --now "$now" --db "sqlite://$db" \
    >"$WORK/simulate-kanta.json" 2>"$WORK/simulate-kanta.$i.time"
  /usr/bin/time -v "$PY" bench/simulate.py "$db" "$now_micros" 30 10 1 >"$WORK/simulate-peer.json" 2>"$WORK/simulate-peer.$i.time"
done
k=$(for i in $(seq 1 "$runs"); do wall "$WORK/simulate-kanta.$i.time"; done | median)
p=$(for i in $(seq 1 "$runs"); do wall "$WORK/simulate-peer.$i.time"; done | median)
echo "30-day simulation of win-back over $n customers, 10 draws (median of $runs):"
echo "  kanta journeys simulate: ${k} s, peak RSS $(rss "$WORK/simulate-kanta.1.time") MB"
echo "  numpy peer:              ${p} s, peak RSS $(rss "$WORK/simulate-peer.1.time") MB"
awk -v k="$k" -v p="$p" 'BEGIN { printf "  peer / kanta: %.1f×\n", p / k }'
"$PY" - "$WORK/simulate-kanta.json" "$WORK/simulate-peer.json" <<'PYEOF'
import json, sys
k = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
print(f"  entries: kanta {k['entries']['total']} (draws {k['entries_range'][0]}–{k['entries_range'][1]}, moving lapse threshold); "
      f"peer {p['entries']:.0f} (draws {min(p['draws'])}–{max(p['draws'])}, G fixed at {p['lapse_days']})")
PYEOF
