#!/usr/bin/env bash
# Benchmark: `kanta score` on a SQLite store vs `kanta analyze` on the same orders in a file.
#
#   bench/score.sh [SHAPE…]      SHAPE: issue (default) or log10m
#
#   issue   the issue's size: 1,000,000 customers and 10⁷ orders (`kanta generate --customers
#           1000000` over 14 years of history: 10,006,027 lines, one order each)
#   log10m  the 10M-line log of bench/summary.sh: 1,957,134 customers, 10,000,003 orders
#
# For each shape: generates the log with `kanta generate` (cached in bench/work/), imports it
# once into bench/work/score-SHAPE-v2.db with one order per line (`--order-col none`; the
# product lines are stored too, so scoring also finds product groups, which analyze does not),
# then times in one run, under /usr/bin/time -v:
#   - `kanta analyze FILE --order-col none --as-of TODAY` (models fitted; the file's tables and
#     report written), and
#   - `kanta score --db sqlite://…` twice: the first run on a fresh copy of the store and a
#     rescoring run (every customer's scores replaced, stage changes found by a join).
# RUNS rounds of the three (default 3); prints median wall times, peak RSS and the
# score/analyze ratio (target: ≤ 2), and checks that both
# chose the same model with the same log-likelihood. Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=bench/work
mkdir -p "$WORK"
[ -x /usr/bin/time ] && command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq time sqlite3 >/dev/null; }

cargo build --release --quiet
KANTA=target/release/kanta
today=$(date -u +%Y-%m-%d)
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
median() { # name runs: the median wall time of $WORK/name.1.time … name.runs.time
  local i
  for i in $(seq 1 "$2"); do wall "$WORK/$1.$i.time"; done | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

run_shape() { # shape
  local shape=$1 f
  case "$shape" in
    issue)
      f="$WORK/shop-1m.csv"
      [ -s "$f" ] || "$KANTA" generate --customers 1000000 --start 2011-01-01 --end 2024-12-31 --seed 1 --out "$f" ;;
    log10m)
      f="$WORK/orders-10000000.csv"
      [ -s "$f" ] || "$KANTA" generate --rows 10000000 --seed 1 --out "$f" ;;
    *) echo "unknown shape $shape (issue or log10m)" >&2; return 2 ;;
  esac
  local db="$WORK/score-$shape-v2.db"
  if [ ! -s "$db" ]; then
    echo "importing $f into $db (once)…"
    "$KANTA" import orders "$f" --order-col none --currency EUR --db "sqlite://$db" --quiet
  fi
  # RUNS rounds (default 3), each: analyze, then both score runs on a fresh copy of the store;
  # the medians are reported (single runs on this 2-core machine vary by ±20 %).
  local runs=${RUNS:-3} r
  for r in $(seq 1 "$runs"); do
    /usr/bin/time -v "$KANTA" analyze "$f" --order-col none --as-of "$today" --out "$WORK/score-analyze" --quiet \
      2>"$WORK/analyze.$r.time"
    # Fold the write-ahead log into the file first: a copy of the file alone would miss its pages.
    sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    rm -f "$db.scored" "$db.scored-wal" "$db.scored-shm" && cp "$db" "$db.scored"
    # Write the copy out now, or the kernel writes its 2.5 GB back during the first run.
    sync
    # A fresh copy each round, so the first run really is a first run.
    /usr/bin/time -v "$KANTA" score --db "sqlite://$db.scored" --json >"$WORK/score1.json" 2>"$WORK/score1.$r.time"
    /usr/bin/time -v "$KANTA" score --db "sqlite://$db.scored" >"$WORK/score2.txt" 2>"$WORK/score2.$r.time"
    rm -f "$db.scored" "$db.scored-wal" "$db.scored-shm"
    printf 'round %d: analyze %.2f s, score %.2f s, rescore %.2f s\n' "$r" \
      "$(wall "$WORK/analyze.$r.time")" "$(wall "$WORK/score1.$r.time")" "$(wall "$WORK/score2.$r.time")"
  done

  local a s1 s2
  a=$(median analyze "$runs"); s1=$(median score1 "$runs"); s2=$(median score2 "$runs")
  printf '\n%s: %s (medians of %d rounds)\n%-34s %8s %8s %8s\n' "$shape" "$f" "$runs" "" wall_s rss_MB ratio
  printf '%-34s %8.2f %8d %8s\n' "kanta analyze (file, models)" "$a" "$(rss "$WORK/analyze.1.time")" 1.00
  printf '%-34s %8.2f %8d %8.2f\n' "kanta score (first run)" "$s1" "$(rss "$WORK/score1.1.time")" "$(awk -v x="$s1" -v y="$a" 'BEGIN {print x / y}')"
  printf '%-34s %8.2f %8d %8.2f\n' "kanta score (rescoring)" "$s2" "$(rss "$WORK/score2.1.time")" "$(awk -v x="$s2" -v y="$a" 'BEGIN {print x / y}')"
  sed 's/^/    score: /' "$WORK/score2.txt"
  python3 - "$WORK/score-analyze/summary.json" "$WORK/score1.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["models"]; s = json.load(open(sys.argv[2]))["diagnostics"]["models"]
ll = lambda m: {c["model"]: c["fit"].get("log_likelihood") for c in m["candidates"]}
la, ls = ll(a), ll(s)
same = a["chosen"] == s["chosen"] and all(
    (la[k] is None) == (ls[k] is None) and (la[k] is None or abs(la[k] - ls[k]) <= 1e-9 * abs(la[k])) for k in la)
print(f"    check: chosen {a['chosen']} / {s['chosen']}; log-likelihoods {la} / {ls}: {'same' if same else 'DIFFERENT'}")
sys.exit(0 if same else 1)
PY
}

for shape in "${@:-issue}"; do
  run_shape "$shape"
done
