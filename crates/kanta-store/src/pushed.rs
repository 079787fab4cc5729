//! The scoring job pushed down into a PostgreSQL store: the store's side of it.
//!
//! `kanta-warehouse` aggregates the store's orders in the database and leaves the scores of
//! every customer in the session table [`PUSHED_SCORES`] of one connection
//! ([`PushdownConnection`]); [`write`] then computes the product groups there too and replaces
//! the stored scores from those tables, in one transaction with the same effects as
//! [`crate::ScoreStore::write_scores`] (the run, `stage_since`, the stage changes and
//! movements, the journey feed). No per-customer row leaves the database.

use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::{ConnectOptions, Connection};

use kanta_core::crosssell::HINT_TIE;
use kanta_domain::purchase::PURCHASE_SQL;

use crate::scores::{finish_run, insert_run};
use crate::sql::{On, Row, query};
use crate::{NewScoreRun, ScoreRunInfo, StoreError};

/// The session table a push-down scoring run leaves for [`write`], one row per customer with a
/// purchase: the columns of `customers.csv` (`customer_id` as text, `r_score`, `f_score`,
/// `m_score`, `segment`, `stage`, `p_alive`, `expected_purchases_30d`, …, `expected_spend`,
/// `clv_12m`) and `value_tier` and `next_purchase_at` (µs).
pub const PUSHED_SCORES: &str = "kanta_pd_store_scores";

/// Each pushed customer's main category and cross-sell hint (session table).
const GROUPS: &str = "kanta_pd_store_groups";

/// The product groups' steps (session tables): purchase lines as baskets, adoptions, the
/// "bought next" weights, each customer's set of categories, the sets' members and hints.
const LINES: &str = "kanta_pd_store_lines";
const ADOPTED: &str = "kanta_pd_store_adopted";
const TRANSITIONS: &str = "kanta_pd_store_transitions";
const SETS: &str = "kanta_pd_store_sets";
const HAVE: &str = "kanta_pd_store_have";
const HINTS: &str = "kanta_pd_store_hints";

/// The new score rows with their `stage_since` and previous stage (session table).
const NEW: &str = "kanta_pd_store_new";

/// A connection of its own to a PostgreSQL store, for one push-down scoring run: its session
/// tables live in it, and it closes when dropped, taking them along. Made by
/// [`crate::ScoreStore::pushdown_connection`].
pub struct PushdownConnection {
    conn: PgConnection,
}

impl std::fmt::Debug for PushdownConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushdownConnection")
    }
}

impl PushdownConnection {
    /// Connects with the store's options. The push-down's statements are long by design:
    /// sqlx's slow-statement warnings go to the debug level, and the session's notices (a `DROP
    /// TABLE IF EXISTS` of a table that is not there) are not sent.
    pub(crate) async fn open(options: &PgConnectOptions) -> Result<PushdownConnection, StoreError> {
        let options = options
            .clone()
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(10))
            .options([("client_min_messages", "warning")]);
        Ok(PushdownConnection { conn: PgConnection::connect_with(&options).await? })
    }

    /// The connection, for the push-down's statements.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// [`crate::ScoreStore::write_pushed_scores`].
pub(crate) async fn write(conn: &mut PgConnection, run: &NewScoreRun) -> Result<ScoreRunInfo, StoreError> {
    product_groups(conn).await?;
    let now = run.started_at;
    let mut tx = conn.begin().await?;
    // The same lock as `write_scores`: stage-change ids commit in order for the webhooks.
    query::<Postgres>("LOCK TABLE stage_changes IN EXCLUSIVE MODE").execute(&mut tx).await?;
    let customers: i64 =
        query::<Postgres>(&format!("SELECT COUNT(*) FROM {PUSHED_SCORES}")).fetch_one(&mut tx).await?.try_get(0)?;
    let run_id = insert_run(&mut tx, run, customers as u64).await?;
    // Each new row with the stored stage it replaces: kept stages keep their `stage_since`.
    query::<Postgres>(&format!("DROP TABLE IF EXISTS {NEW}")).execute(&mut tx).await?;
    query::<Postgres>(&format!(
        "CREATE TEMPORARY TABLE {NEW} AS SELECT p.customer_id, p.r, p.f, p.m, p.rfm_segment, p.stage, \
         CASE WHEN s.stage = p.stage THEN s.stage_since ELSE $1 END AS stage_since, s.stage AS old_stage, \
         p.p_alive, p.expected_30d, p.expected_90d, p.expected_365d, p.p_purchase_30d, p.expected_spend, p.clv_12m, \
         p.next_purchase_at, p.value_tier, g.main_category, g.next_category \
         FROM (SELECT CAST(customer_id AS BIGINT) AS customer_id, CAST(r_score AS BIGINT) AS r, \
         CAST(f_score AS BIGINT) AS f, CAST(m_score AS BIGINT) AS m, segment AS rfm_segment, stage, p_alive, \
         expected_purchases_30d AS expected_30d, expected_purchases_90d AS expected_90d, \
         expected_purchases_365d AS expected_365d, p_purchase_30d, expected_spend, clv_12m, \
         CAST(next_purchase_at AS BIGINT) AS next_purchase_at, value_tier FROM {PUSHED_SCORES}) p \
         LEFT JOIN scores s ON s.customer_id = p.customer_id LEFT JOIN {GROUPS} g ON g.customer_id = p.customer_id"
    ))
    .bind(now)
    .execute(&mut tx)
    .await?;
    // Replacing every row, as `write_scores` does, in key order.
    query::<Postgres>("DELETE FROM scores").execute(&mut tx).await?;
    query::<Postgres>(&format!(
        "INSERT INTO scores (customer_id, run_id, r, f, m, rfm_segment, stage, stage_since, p_alive, \
         expected_30d, expected_90d, expected_365d, p_purchase_30d, expected_spend, clv_12m, \
         next_purchase_at, value_tier, main_category, next_category) \
         SELECT customer_id, $1, r, f, m, rfm_segment, stage, stage_since, p_alive, expected_30d, expected_90d, \
         expected_365d, p_purchase_30d, expected_spend, clv_12m, next_purchase_at, value_tier, main_category, \
         next_category FROM {NEW} ORDER BY customer_id"
    ))
    .bind(run_id)
    .execute(&mut tx)
    .await?;
    let changes = query::<Postgres>(&format!(
        "INSERT INTO stage_changes (customer_id, run_id, time, from_stage, to_stage) \
         SELECT customer_id, $1, $2, old_stage, stage FROM {NEW} WHERE old_stage IS DISTINCT FROM stage \
         ORDER BY customer_id"
    ))
    .bind(run_id)
    .bind(now)
    .execute(&mut tx)
    .await?
    .rows_affected();
    if changes > 0 {
        query::<Postgres>(&format!(
            "INSERT INTO stage_movements (run_id, from_stage, to_stage, customers) \
             SELECT $1, old_stage, stage, COUNT(*) FROM {NEW} WHERE old_stage IS DISTINCT FROM stage \
             GROUP BY old_stage, stage ORDER BY old_stage NULLS FIRST, stage"
        ))
        .bind(run_id)
        .execute(&mut tx)
        .await?;
        crate::journey::feed::stages_changed(&mut tx, run_id).await?;
    }
    let info = finish_run(&mut tx, run_id, changes).await?;
    tx.commit().await?;
    drop_tables(conn, &[NEW, GROUPS, PUSHED_SCORES]).await?;
    Ok(info)
}

/// [`GROUPS`]: `kanta_core::crosssell::product_groups` in SQL, for the pushed customers, in
/// steps over session tables (a single statement of CTEs sorted millions of rows on disk).
///
/// A basket is a customer's categorised lines of purchases (completed orders with a positive
/// amount, as `kanta_domain::purchase` says; refunds and zero amounts bring none) at one second
/// (`lines`). The main category is the one in most baskets, ties to the name first in byte
/// order. A category's adoption is its first basket; `RANK() − 1` over the adoption times
/// counts the categories adopted before it, which share its one unit of credit (`T[A][B] +=
/// 1/n`, `adopted` and `transitions`). The hint is the category not yet bought with the largest
/// `Σ T[A][B]` over those bought, weights within [`HINT_TIE`] of the largest tying, ties to the
/// name first. It depends on the set of categories bought alone, so it is found once per
/// distinct set (`have`, the names joined by the unit separator, chr(31), which stored text
/// never holds; a shop with 13 categories and 2·10⁵ customers has 4,095) and joined back, as the
/// models are found once per distinct history.
async fn product_groups(conn: &mut PgConnection) -> Result<(), StoreError> {
    let steps = [
        format!(
            "CREATE TEMPORARY TABLE {LINES} AS SELECT DISTINCT o.customer_id AS c, \
             CASE WHEN o.time >= 0 THEN o.time / 1000000 ELSE (o.time - 999999) / 1000000 END AS t, ol.category AS k \
             FROM orders o JOIN order_lines ol ON ol.order_id = o.id \
             JOIN (SELECT CAST(customer_id AS BIGINT) AS c FROM {PUSHED_SCORES}) p ON p.c = o.customer_id \
             WHERE {PURCHASE_SQL} AND ol.category IS NOT NULL"
        ),
        format!(
            "CREATE TEMPORARY TABLE {ADOPTED} AS SELECT c, k, COUNT(*) AS baskets, MIN(t) AS t, \
             RANK() OVER (PARTITION BY c ORDER BY MIN(t)) - 1 AS n FROM {LINES} GROUP BY c, k"
        ),
        format!(
            "CREATE TEMPORARY TABLE {TRANSITIONS} AS SELECT a.k AS a, b.k AS b, \
             SUM(CAST(1 AS DOUBLE PRECISION) / b.n) AS w FROM {ADOPTED} a JOIN {ADOPTED} b ON b.c = a.c AND a.t < b.t \
             GROUP BY a.k, b.k"
        ),
        format!(
            "CREATE TEMPORARY TABLE {SETS} AS SELECT c, string_agg(k, chr(31) ORDER BY k COLLATE \"C\") AS have \
             FROM {ADOPTED} GROUP BY c"
        ),
        format!(
            "CREATE TEMPORARY TABLE {HAVE} AS SELECT DISTINCT s.have, a.k FROM {SETS} s JOIN {ADOPTED} a ON a.c = s.c"
        ),
        format!(
            "CREATE TEMPORARY TABLE {HINTS} AS WITH sc AS (SELECT h.have, tr.b, SUM(tr.w) AS s \
             FROM {HAVE} h JOIN {TRANSITIONS} tr ON tr.a = h.k \
             WHERE NOT EXISTS (SELECT 1 FROM {HAVE} x WHERE x.have = h.have AND x.k = tr.b) GROUP BY h.have, tr.b) \
             SELECT DISTINCT ON (sc.have) sc.have, sc.b FROM sc JOIN (SELECT have, MAX(s) AS m FROM sc GROUP BY have) mx \
             ON mx.have = sc.have WHERE sc.s >= mx.m * $1 ORDER BY sc.have, sc.b COLLATE \"C\""
        ),
        format!(
            "CREATE TEMPORARY TABLE {GROUPS} AS SELECT m.c AS customer_id, m.k AS main_category, h.b AS next_category \
             FROM (SELECT DISTINCT ON (c) c, k FROM {ADOPTED} ORDER BY c, baskets DESC, k COLLATE \"C\") m \
             JOIN {SETS} s ON s.c = m.c LEFT JOIN {HINTS} h ON h.have = s.have"
        ),
    ];
    drop_tables(conn, &[GROUPS, HINTS, HAVE, SETS, TRANSITIONS, ADOPTED, LINES]).await?;
    for sql in &steps {
        let q = query::<Postgres>(sql);
        let q = if sql.contains("$1") { q.bind(1.0 - HINT_TIE) } else { q };
        q.execute(On::Conn(&mut *conn)).await?;
    }
    drop_tables(conn, &[HINTS, HAVE, SETS, TRANSITIONS, ADOPTED, LINES]).await
}

/// Drops the session tables `tables` that exist.
async fn drop_tables(conn: &mut PgConnection, tables: &[&str]) -> Result<(), StoreError> {
    for table in tables {
        query::<Postgres>(&format!("DROP TABLE IF EXISTS {table}")).execute(On::Conn(&mut *conn)).await?;
    }
    Ok(())
}
