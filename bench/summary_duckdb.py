"""The per-customer table of `kanta analyze`, computed by DuckDB (the benchmark's peer).

Same definitions as kanta (README, "customers.csv"): lines summed per order id, orders with a
negative sum are returns, zero-amount orders dropped, as-of = the day of the last order, purchase
periods = UTC days, frequency = periods - 1, recency/T in days, monetary = mean repeat-period value.
Usage: summary_duckdb.py ORDERS(.csv|.parquet) OUT.csv
"""
import sys
import time

import duckdb

src, out = sys.argv[1], sys.argv[2]
reader = (
    f"read_parquet('{src}')"
    if src.endswith(".parquet")
    else f"read_csv('{src}', header=true, columns={{'order_id':'VARCHAR','customer_id':'VARCHAR',"
    f"'order_date':'TIMESTAMPTZ','product_id':'VARCHAR','category':'VARCHAR','quantity':'INTEGER',"
    f"'unit_price':'DECIMAL(18,4)','amount':'DECIMAL(18,4)'}})"
)
query = f"""
COPY (
WITH lines AS (
  SELECT order_id, customer_id, order_date AS t, CAST(amount AS DECIMAL(18,4)) AS amount FROM {reader}
),
orders AS (
  SELECT order_id, any_value(customer_id) AS customer_id, min(t) AS t, sum(amount) AS amount
  FROM lines GROUP BY order_id
),
obs AS (SELECT CAST(max(t) AS DATE) AS d FROM orders),
periods AS (
  SELECT customer_id, CAST(t AS DATE) AS day, sum(amount) AS value, count(*) AS n
  FROM orders, obs WHERE amount > 0 AND CAST(t AS DATE) <= obs.d
  GROUP BY customer_id, day
)
SELECT customer_id,
       min(day) AS first_purchase,
       max(day) AS last_purchase,
       sum(n) AS orders,
       sum(value) AS revenue,
       count(*) - 1 AS frequency,
       datediff('day', min(day), max(day)) AS recency,
       datediff('day', min(day), any_value(obs.d)) AS "T",
       CASE WHEN count(*) = 1 THEN 0
            ELSE CAST(sum(value) - arg_min(value, day) AS DOUBLE) / (count(*) - 1) END AS monetary
FROM periods, obs
GROUP BY customer_id
) TO '{out}' (HEADER, DELIMITER ',')
"""
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
start = time.perf_counter()
con.execute(query)
elapsed = time.perf_counter() - start
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
print(f"query {elapsed:.2f} s on {threads} threads")
