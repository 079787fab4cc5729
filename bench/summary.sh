#!/usr/bin/env bash
# Benchmark: `kanta analyze` vs DuckDB computing the same per-customer table, on CSV and Parquet.
#
#   bench/summary.sh [ROWS]      (default 10,000,000 order lines)
#
# Generates the order log with `kanta generate` (once; cached in bench/work/), installs DuckDB
# from PyPI in a venv (once), then for each format runs both tools under /usr/bin/time -v, prints
# wall time, peak RSS and the kanta/DuckDB ratios, and checks that kanta's customers.csv equals
# DuckDB's table. Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
WORK=bench/work
mkdir -p "$WORK"

[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q duckdb
fi
PY="$WORK/venv/bin/python"

cargo build --release --quiet
KANTA=target/release/kanta

for ext in csv parquet; do
  f="$WORK/orders-$ROWS.$ext"
  [ -s "$f" ] || "$KANTA" generate --rows "$ROWS" --seed 1 --out "$f"
done

# peak RSS (kB) and wall seconds from /usr/bin/time -v output
measure() { # name logfile cmd...
  local log=$2; shift 2
  /usr/bin/time -v "$@" >"$log.out" 2>"$log" || { cat "$log" "$log.out" >&2; return 1; }
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

printf '\n%-8s %12s %12s %8s %14s %14s %8s\n' format kanta_s duckdb_s ratio kanta_rss_MB duckdb_rss_MB ratio
for ext in csv parquet; do
  f="$WORK/orders-$ROWS.$ext"
  out="$WORK/kanta-$ext"
  measure kanta "$WORK/kanta-$ext.time" "$KANTA" analyze "$f" --out "$out" --quiet
  measure duckdb "$WORK/duckdb-$ext.time" "$PY" bench/summary_duckdb.py "$f" "$WORK/duckdb-$ext.csv"
  kw=$(wall "$WORK/kanta-$ext.time"); dw=$(wall "$WORK/duckdb-$ext.time")
  kr=$(rss "$WORK/kanta-$ext.time"); dr=$(rss "$WORK/duckdb-$ext.time")
  printf '%-8s %12.2f %12.2f %8.2f %14.0f %14.0f %8.2f\n' "$ext" "$kw" "$dw" "$(echo "$kw / $dw" | bc -l)" \
    "$(echo "$kr / 1024" | bc -l)" "$(echo "$dr / 1024" | bc -l)" "$(echo "$kr / $dr" | bc -l)"
  cat "$WORK/duckdb-$ext.time.out" | sed 's/^/    duckdb: /'
  "$PY" bench/compare_tables.py "$out/customers.csv" "$WORK/duckdb-$ext.csv" | sed 's/^/    check: /'
done
