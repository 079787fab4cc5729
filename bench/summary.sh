#!/usr/bin/env bash
# Benchmark: `kanta analyze` vs DuckDB computing the same per-customer table, on CSV and Parquet.
#
#   bench/summary.sh [ROWS]      (default 10,000,000 order lines)
#   SHAPES="shop" bench/summary.sh          (one shape only; default: both)
#
# Two shapes of order log, generated with `kanta generate` (once; cached in bench/work/):
#   shop   the generator's two years (2023–2024): ~1.96M customers at 10M lines, ~5 lines each;
#   short  the last four months of 2024: 3.2M customers at 10M lines (~3 lines each),
#          so the per-customer phases (analysis, the two 30-column tables) weigh more.
# Installs DuckDB from PyPI in a venv (once), then for each shape and format runs both tools
# REPS times (default 3),
# alternating, under /usr/bin/time -v; prints the median wall time, the peak RSS and the
# kanta/DuckDB ratios, and checks that kanta's customers.csv equals DuckDB's table.
# Run by hand; never in CI. The VM's timings vary by ±15 % run to run, hence the median.
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

cargo build --release --quiet -p kanta-cli
KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
SHAPES=${SHAPES:-shop short}

# The file of a shape and format; the shop shape keeps its old name, so cached files are reused.
log_file() { # shape ext
  case $1 in
    shop) echo "$WORK/orders-$ROWS.$2" ;;
    *) echo "$WORK/orders-$1-$ROWS.$2" ;;
  esac
}
for shape in $SHAPES; do
  case $shape in
    shop) window=() ;;
    short) window=(--start 2024-09-01 --end 2024-12-31) ;;
    *) echo "unknown shape $shape (shop or short)" >&2; exit 2 ;;
  esac
  for ext in csv parquet; do
    f=$(log_file "$shape" "$ext")
    [ -s "$f" ] || "$KANTA" generate --rows "$ROWS" --seed 1 "${window[@]}" --out "$f"
  done
done

# peak RSS (kB) and wall seconds from /usr/bin/time -v output
measure() { # name logfile cmd...
  local log=$2; shift 2
  /usr/bin/time -v "$@" >"$log.out" 2>"$log" || { cat "$log" "$log.out" >&2; return 1; }
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

REPS=${REPS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '\nmedian of %s alternating runs each\n' "$REPS"
printf '%-16s %12s %12s %8s %14s %14s %8s\n' shape/format kanta_s duckdb_s ratio kanta_rss_MB duckdb_rss_MB ratio
for shape in $SHAPES; do
for ext in csv parquet; do
  f=$(log_file "$shape" "$ext")
  out="$WORK/kanta-$shape-$ext"
  : >"$WORK/k.walls"; : >"$WORK/d.walls"; : >"$WORK/k.rss"; : >"$WORK/d.rss"
  for rep in $(seq "$REPS"); do
    measure kanta "$WORK/kanta-$ext.time" "$KANTA" analyze "$f" --out "$out" --quiet --model none
    measure duckdb "$WORK/duckdb-$ext.time" "$PY" bench/summary_duckdb.py "$f" "$WORK/duckdb-$ext.csv"
    wall "$WORK/kanta-$ext.time" >>"$WORK/k.walls"; wall "$WORK/duckdb-$ext.time" >>"$WORK/d.walls"
    rss "$WORK/kanta-$ext.time" >>"$WORK/k.rss"; rss "$WORK/duckdb-$ext.time" >>"$WORK/d.rss"
  done
  kw=$(median <"$WORK/k.walls"); dw=$(median <"$WORK/d.walls")
  kr=$(sort -n "$WORK/k.rss" | tail -1); dr=$(sort -n "$WORK/d.rss" | tail -1)
  printf '%-16s %12.2f %12.2f %8.2f %14.0f %14.0f %8.2f\n' "$shape/$ext" "$kw" "$dw" "$(awk -v a="$kw" -v b="$dw" 'BEGIN {print a / b}')" \
    "$((kr / 1024))" "$((dr / 1024))" "$(awk -v a="$kr" -v b="$dr" 'BEGIN {print a / b}')"
  sed 's/^/    duckdb (last run): /' "$WORK/duckdb-$ext.time.out"
  "$PY" bench/compare_tables.py "$out/customers.csv" "$WORK/duckdb-$ext.csv" | sed 's/^/    check: /'
done
done
