#!/usr/bin/env bash
# Benchmark: the push-down (`kanta analyze --engine`) on PostgreSQL and on Spark vs `kanta analyze`
# on the same orders as a Parquet file vs exporting the orders from the engine and analysing the
# export, in one run.
#
#   bench/pushdown.sh [ROWS]     (default 10,000,000 order lines; REPS=3 runs each, medians)
#
# The order log is `kanta generate --rows ROWS --seed 1` (the shop of summary.sh: ~1.96M
# customers at 10M lines), as CSV and Parquet in bench/work/. It is loaded once per run into a
# throw-away PostgreSQL (scripts/with-postgres, fsync on: KANTA_PG_DURABLE=1) with COPY, and
# read by a throw-away local Spark Connect server (scripts/with-spark, local[2], 6 GiB) straight
# from the Parquet file (`--query "SELECT * FROM parquet.\`…\`"`), as a lake table would be.
# The exports: PostgreSQL `COPY (SELECT …) TO STDOUT CSV` into a file, then `kanta analyze` on it;
# Spark (pyspark, classic local session) rewriting the Parquet file, then `kanta analyze` on it.
# Prints wall times, what moved (rows aggregated, distinct histories vs customers, bytes), the
# engine's and kanta's shares, and checks the reports agree. Run by hand; never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
WORK=bench/work
mkdir -p "$WORK"

if [ -z "${KANTA_TEST_POSTGRES_URL:-}" ] || [ -z "${KANTA_TEST_SPARK_URL:-}" ]; then
  scripts/install-test-deps
  command -v bc >/dev/null && [ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time bc >/dev/null; }
  cargo build --release --quiet -p kanta-cli
  export KANTA_PG_DURABLE=1 KANTA_SPARK_MASTER='local[2]' KANTA_SPARK_MEMORY=6g
  exec scripts/with-postgres scripts/with-spark bash "$0" "$@"
fi

KANTA=${KANTA:-${CARGO_TARGET_DIR:-target}/release/kanta}
REPS=${REPS:-3}
PG=$KANTA_TEST_POSTGRES_URL
SPARK=$KANTA_TEST_SPARK_URL
CSV=$WORK/orders-$ROWS.csv
PARQUET=$(realpath -m "$WORK/orders-$ROWS.parquet")
[ -s "$CSV" ] || "$KANTA" generate --rows "$ROWS" --seed 1 --out "$CSV"
[ -s "$PARQUET" ] || "$KANTA" generate --rows "$ROWS" --seed 1 --out "$PARQUET"
OUT=$WORK/pushdown
rm -rf "$OUT" && mkdir -p "$OUT"

wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timed NAME REP CMD…: runs CMD under /usr/bin/time -v, keeps its log as $OUT/NAME.REP.time
timed() {
  local name=$1 rep=$2; shift 2
  /usr/bin/time -v "$@" >"$OUT/$name.$rep.out" 2>"$OUT/$name.$rep.time" || { tail -20 "$OUT/$name.$rep.time" >&2; return 1; }
}

echo "== loading $ROWS lines into PostgreSQL (once)"
start=$(date +%s.%N)
psql -q "$PG" -c "CREATE TABLE orders (order_id TEXT, customer_id TEXT, order_date TIMESTAMPTZ, product_id TEXT,
  category TEXT, quantity INT, unit_price NUMERIC(12, 2), amount NUMERIC(12, 2))"
psql -q "$PG" -c "\copy orders FROM '$CSV' WITH (FORMAT csv, HEADER true)"
psql -q "$PG" -c "VACUUM ANALYZE orders"
echo "   loaded in $(echo "$(date +%s.%N) - $start" | bc) s"

SPARK_QUERY="SELECT * FROM parquet.\`$PARQUET\`"
SPARK_HOME=$(target/test-tools/venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME

for rep in $(seq 1 "$REPS"); do
  echo "== round $rep of $REPS"
  timed file "$rep" "$KANTA" analyze "$PARQUET" -q -o "$OUT/file"
  timed pg "$rep" "$KANTA" analyze --engine "$PG" --table orders -q -o "$OUT/pg"
  timed spark "$rep" "$KANTA" analyze --engine "$SPARK" --query "$SPARK_QUERY" -q -o "$OUT/spark"
  # Export, then analyse: PostgreSQL's COPY to CSV (its native export), then kanta on the file.
  timed pg-export "$rep" psql -q "$PG" -c "\copy (SELECT order_id, customer_id, order_date, amount FROM orders) TO '$OUT/export.csv' WITH (FORMAT csv, HEADER true)"
  timed pg-export-analyze "$rep" "$KANTA" analyze "$OUT/export.csv" -q -o "$OUT/pg-export"
  rm -f "$OUT/export.csv"
  # Spark's export: a classic local session rewriting the columns kanta reads as Parquet.
  timed spark-export "$rep" target/test-tools/venv/bin/python - "$PARQUET" "$OUT/export.parquet" <<'PY'
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.driver.memory", "6g").config("spark.ui.enabled", "false").getOrCreate()
spark.read.parquet(sys.argv[1]).select("order_id", "customer_id", "order_date", "amount").coalesce(1).write.mode("overwrite").parquet(sys.argv[2])
spark.stop()
PY
  timed spark-export-analyze "$rep" "$KANTA" analyze "$(ls "$OUT"/export.parquet/part-*.parquet | head -1)" -q -o "$OUT/spark-export"
  rm -rf "$OUT/export.parquet"
done

m() { for rep in $(seq 1 "$REPS"); do wall "$OUT/$1.$rep.time"; done | median; }
mr() { for rep in $(seq 1 "$REPS"); do rss "$OUT/$1.$rep.time"; done | median; }
file=$(m file); pg=$(m pg); spark=$(m spark)
pgx=$(echo "$(m pg-export) + $(m pg-export-analyze)" | bc); sparkx=$(echo "$(m spark-export) + $(m spark-export-analyze)" | bc)
echo
echo "== $ROWS order lines, medians of $REPS (seconds; peak RSS of kanta in MB)"
printf '%-44s %8s %8s\n' "run" "wall s" "RSS MB"
printf '%-44s %8s %8s\n' "kanta analyze on the Parquet file" "$file" "$(( $(mr file) / 1024 ))"
printf '%-44s %8s %8s\n' "push-down to PostgreSQL" "$pg" "$(( $(mr pg) / 1024 ))"
printf '%-44s %8s %8s\n' "PostgreSQL: COPY to CSV, then analyze" "$pgx" "$(( $(mr pg-export-analyze) / 1024 ))"
printf '%-44s %8s %8s\n' "push-down to Spark (local[2])" "$spark" "$(( $(mr spark) / 1024 ))"
printf '%-44s %8s %8s\n' "Spark: rewrite Parquet, then analyze" "$sparkx" "$(( $(mr spark-export-analyze) / 1024 ))"
echo "ratios: push-down/export PostgreSQL $(echo "scale=2; $pg / $pgx" | bc), Spark $(echo "scale=2; $spark / $sparkx" | bc); push-down/file PostgreSQL $(echo "scale=2; $pg / $file" | bc), Spark $(echo "scale=2; $spark / $file" | bc)"
for engine in pg spark; do
  target/test-tools/venv/bin/python - "$OUT/$engine/summary.json" "$engine" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["pushdown"]
print(f"{sys.argv[2]}: {p['rows_aggregated']:,} rows aggregated into {p['orders']:,} orders of {p['customers']:,} customers; "
      f"pulled {p['distinct_histories']:,} distinct histories ({p['customers'] / p['distinct_histories']:.1f} customers each) "
      f"and {p['spend_keys']:,} spend keys, {p['bytes_received']:,} bytes; {p['statements']} statements; "
      f"engine {p['engine_seconds']:.1f} s, kanta {p['kanta_seconds']:.2f} s")
print("   slowest steps: " + "; ".join(f"{s['step']} {s['seconds']:.1f} s" for s in sorted(p["steps"], key=lambda s: -s["seconds"])[:6]))
PY
done
# The reports agree (floats to 1e-9; the check the test suite makes on smaller data).
target/test-tools/venv/bin/python - "$OUT" <<'PY'
import json, sys
def same(a, b, path=""):
    if isinstance(a, dict):
        return all(same(a[k], b.get(k), f"{path}.{k}") for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    if isinstance(a, float) or isinstance(b, float):
        ok = abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    else:
        ok = a == b
    if not ok:
        print(f"differs at {path}: {a} vs {b}")
    return ok
out = sys.argv[1]
base = json.load(open(f"{out}/file/summary.json"))
for run in ["pg", "spark", "pg-export", "spark-export"]:
    other = json.load(open(f"{out}/{run}/summary.json"))
    print(run, "summary equal to the file's:", same(base["summary"], other["summary"]) and same(base["models"], other["models"]))
PY
