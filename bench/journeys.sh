#!/usr/bin/env bash
# Benchmark: journeys over a store of 10⁶ customers (issue 17).
#
#   bench/journeys.sh
#
# (a) Evaluating all date and predicted-date triggers for one day: `kanta journeys triggers`
#     (journeys/birthday.yaml and journeys/next-purchase.yaml applied) over the window
#     D−1 12:00Z → D 12:00Z, in which every customer zone crosses one local midnight (D is three
#     days before the busiest predicted-purchase day), against a peer: the bare SQL in `sqlite3`
#     selecting the customers whose birthday's month and day is D's and those whose predicted
#     next purchase is on D+3, in UTC. The peer does less work: no time
#     zones (kanta reads each customer's day in their zone), no entry rules and no runs written
#     (kanta enters every customer it finds, 100 to a transaction).
# (b) Email throughput and (c) steps per second: bench/journeys-delivery.sh.
#
# The store is built once into bench/work/journeys-N-END.db (N = CUSTOMERS, default 10⁶):
# `kanta generate --customers N` over the two years up to yesterday (END; END=YYYY-MM-DD reuses
# a store built on another day), imported with `kanta import orders`,
# scored with `kanta score` (so the customers have `next_purchase_at`), then `kanta import
# customers` gives every customer a birthday (spread over the year, deterministic) and one of
# eight zones (one in eight without a zone: the journeys' and the settings' default). RUNS
# rounds (default 3) of both on a fresh copy of the store each, medians, under /usr/bin/time -v;
# prints wall times, peak RSS, entered counts and rows, and the kanta/peer ratio. Run by hand;
# never in CI. CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=bench/work
mkdir -p "$WORK"
[ -x /usr/bin/time ] && command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq time sqlite3 >/dev/null; }

# KANTA=PATH uses that binary instead of building one.
[ -n "${KANTA:-}" ] || cargo build --release --quiet -p kanta-cli
KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
median() { # name runs: the median wall time of $WORK/name.1.time … name.runs.time
  local i
  for i in $(seq 1 "$2"); do wall "$WORK/$1.$i.time"; done | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# ---------------------------------------------------------------------------------------------
# The store: 10⁶ customers with orders, scores, birthdays and zones (built once per END).
end=${END:-$(date -u -d yesterday +%Y-%m-%d)}
start=$(date -u -d "$end - 2 years" +%Y-%m-%d)
n=${CUSTOMERS:-1000000}   # smaller for a quick try of the script
log="$WORK/journeys-$n-$end.csv"
db="$WORK/journeys-$n-$end.db"
if [ ! -s "$db" ]; then
  [ -s "$log" ] || "$KANTA" generate --customers "$n" --start "$start" --end "$end" --seed 1 --out "$log" --quiet
  echo "building $db (once): import, score, birthdays and zones…"
  rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
  "$KANTA" import orders "$log" --currency EUR --db "sqlite://$db.tmp" --quiet
  "$KANTA" score --db "sqlite://$db.tmp" >/dev/null
  # Every generated customer id (C0000001 …), a birthday from 1950–1999 spread over the days of
  # the year, and a zone; the 8th zone is empty (no zone).
  cut -d, -f2 "$log" | tail -n +2 | sort -u | awk -v OFS=, '
    BEGIN {
      print "id", "timezone", "birthday"
      split("UTC Europe/Helsinki America/Los_Angeles America/New_York Asia/Tokyo Australia/Sydney Asia/Kolkata", z, " ")
      split("31 28 31 30 31 30 31 31 30 31 30 31", len, " ")
    }
    {
      n = substr($1, 2) + 0
      doy = (n * 7919) % 365; m = 1
      while (doy >= len[m]) { doy -= len[m]; m++ }
      print $1, (n % 8 < 7 ? z[n % 8 + 1] : ""), sprintf("%04d-%02d-%02d", 1950 + n % 50, m, doy + 1)
    }' >"$WORK/journeys-customers.csv"
  "$KANTA" import customers "$WORK/journeys-customers.csv" --db "sqlite://$db.tmp" --quiet
  "$KANTA" journeys apply journeys/birthday.yaml journeys/next-purchase.yaml --db "sqlite://$db.tmp" >/dev/null
  sqlite3 "$db.tmp" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  mv "$db.tmp" "$db"
fi

# ---------------------------------------------------------------------------------------------
# (a) One day of date and predicted-date triggers.
# D is three days before the UTC day most predicted next purchases fall on (next-purchase.yaml:
# offset −3d), so both journeys have customers to enter; any day has about N/365 birthdays.
predicted=$(sqlite3 "$db" "SELECT date(next_purchase_at / 1000000, 'unixepoch') AS d FROM scores
  WHERE next_purchase_at IS NOT NULL GROUP BY d ORDER BY count(*) DESC, d LIMIT 1")
day=$(date -u -d "$predicted - 3 days" +%Y-%m-%d)
before="$(date -u -d "$day - 1 day" +%Y-%m-%d)T12:00:00Z"
at="${day}T12:00:00Z"
md=$(date -u -d "$day" +%m-%d)
from=$(( $(date -u -d "$predicted" +%s) * 1000000 ))
until=$(( from + 86400000000 ))
peer_sql="SELECT c.external_id FROM customers c WHERE c.erased_at IS NULL AND substr(c.birthday, 6, 5) = '$md';
SELECT c.external_id FROM scores s JOIN customers c ON c.id = s.customer_id
 WHERE c.erased_at IS NULL AND s.next_purchase_at >= $from AND s.next_purchase_at < $until;"

runs=${RUNS:-3}
for r in $(seq 1 "$runs"); do
  copy="$db.run"
  rm -f "$copy" "$copy-wal" "$copy-shm" && cp "$db" "$copy"
  # The first evaluation starts each journey's cursor at D−1 noon: the timed one then covers
  # exactly one local midnight in every zone.
  "$KANTA" journeys triggers --now "$before" --db "sqlite://$copy" >/dev/null
  sync
  /usr/bin/time -v "$KANTA" journeys triggers --now "$at" --db "sqlite://$copy" >"$WORK/triggers.out" \
    2>"$WORK/triggers.$r.time"
  /usr/bin/time -v sqlite3 "$copy" "$peer_sql" >"$WORK/peer.out" 2>"$WORK/peer.$r.time"
  rm -f "$copy" "$copy-wal" "$copy-shm"
  printf 'round %d: kanta journeys triggers %.2f s, sqlite3 %.2f s\n' "$r" \
    "$(wall "$WORK/triggers.$r.time")" "$(wall "$WORK/peer.$r.time")"
done
k=$(median triggers "$runs"); p=$(median peer "$runs")
entered=$(awk 'NR > 1 {s += $2} END {print s + 0}' "$WORK/triggers.out")
printf '\n(a) date and predicted-date triggers for %s (window %s → %s), medians of %d rounds\n' "$day" "$before" "$at" "$runs"
printf '%-46s %8s %8s %10s %8s\n' "" wall_s rss_MB customers ratio
printf '%-46s %8.2f %8d %10d %8.2f\n' "kanta journeys triggers (zones, entry, runs)" "$k" \
  "$(rss "$WORK/triggers.1.time")" "$entered" "$(awk -v x="$k" -v y="$p" 'BEGIN {print x / y}')"
printf '%-46s %8.2f %8d %10d %8s\n' "sqlite3 bare SELECT (UTC only, no entry)" "$p" \
  "$(rss "$WORK/peer.1.time")" "$(wc -l <"$WORK/peer.out")" 1.00
sed 's/^/    kanta: /' "$WORK/triggers.out"
echo "    note: the peer does less work: no zones (UTC days), no entry rules, no runs written."

# (b) and (c): bench/journeys-delivery.sh.
