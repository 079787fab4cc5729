//! The scoring job pushed down into a PostgreSQL store: the orders are aggregated where they
//! are, and only the distinct histories and spend keys come out.
//!
//! The store's orders are `kanta analyze --engine`'s source ([`store_orders`]: one order per
//! row, refunds negative, cancelled orders left out, the UTC day of each order), run through
//! `kanta-warehouse` on a connection of the store's own ([`kanta_store::PushdownConnection`])
//! as of today, with the job's models, lapse threshold and slipping rule. The warehouse leaves
//! every customer's scores in a session table of that connection, and the store writes them
//! from there ([`kanta_store::ScoreStore::write_pushed_scores`], the product groups computed
//! in SQL). The stored scores, run, diagnostics and stage changes are those of the in-memory
//! job (`tests/score.rs` compares the two on the same store).

use std::time::{Duration, Instant};

use kanta_core::analysis::{AnalysisError, AnalysisOptions};
use kanta_core::time::Day;
use kanta_io::columns::ColumnSpec;
use kanta_store::{NewScoreRun, PushdownConnection, Storage};
use kanta_warehouse::postgres::PostgresEngine;
use kanta_warehouse::{Source, WarehouseError};
use serde_json::json;

use crate::score::{NO_PURCHASES, ScoreJob, ScoreOutcome, micros_after, stage_name};
use crate::{Cancel, JobError};

/// The store's orders as the scoring job reads them (`kanta_domain::purchase`): the
/// customer's internal id, the order's UTC day (the time's µs floored to days exactly, in
/// NUMERIC), and its signed amount in currency units (NUMERIC, so exact).
fn store_orders() -> String {
    use kanta_domain::purchase::{IN_LOG_SQL, SIGNED_AMOUNT_SQL};
    format!(
        "SELECT o.customer_id AS customer_id, \
         DATE '1970-01-01' + CAST(FLOOR(o.time / 86400000000.0) AS INTEGER) AS order_day, \
         CAST({SIGNED_AMOUNT_SQL} AS NUMERIC) / 10000 AS amount FROM orders o WHERE {IN_LOG_SQL}"
    )
}

/// The engine's name in messages.
const ENGINE: &str = "the PostgreSQL store";

/// Scores the store on `conn` as of `now`'s UTC day (see the module docs). `orders_read` gets
/// the orders counted, for the record of a cancelled run.
pub(crate) async fn score_pushed(
    store: &dyn Storage,
    conn: PushdownConnection,
    job: &ScoreJob,
    now: i64,
    cancel: &Cancel,
    orders_read: &mut u64,
) -> Result<ScoreOutcome, JobError> {
    let clock = Instant::now();
    let today = kanta_core::time::Timestamp::from(kanta_domain::Timestamp::from_micros(now)).day();
    let options = kanta_warehouse::Options {
        source: Source::Query(store_orders()),
        columns: ColumnSpec {
            customer: Some("customer_id".into()),
            order: Some("none".into()),
            time: Some("order_day".into()),
            amount: Some("amount".into()),
            ..ColumnSpec::default()
        },
        max_errors: 0,
        analysis: AnalysisOptions { as_of: Some(today), lapse_days: job.lapse_days, ..AnalysisOptions::default() },
        score: Some(job.score),
        week: false,
        into: String::new(),
        store: true,
    };
    cancel.check("read")?;
    let mut engine = PostgresEngine::on_store(conn, ENGINE.to_owned());
    let analysed = kanta_warehouse::analyze(&mut engine, &options, &|_| {}).await;
    let outcome = match analysed {
        Ok(outcome) => outcome,
        Err(WarehouseError::Analysis {
            error: AnalysisError::NoOrders | AnalysisError::NoPurchases(_),
            orders,
            ..
        }) => {
            return nothing_to_score(store, today, orders, now, clock.elapsed()).await;
        }
        Err(e) => return Err(JobError::Pushdown(Box::new(e))),
    };
    *orders_read = outcome.stats.orders;
    cancel.check("models")?;
    let mut conn = engine.into_store().ok_or_else(|| JobError::Worker("the store's connection was lost".into()))?;

    let stats = outcome.stats;
    let models_skipped = outcome.models_skipped;
    let (model, models) = match outcome.models {
        Some(mut summary) => {
            // As in memory: the targets would name internal ids; the 360 view and segments
            // are the way to find them.
            summary.targets.clear();
            (
                Some(summary.chosen.to_owned()),
                serde_json::to_value(&summary).map_err(|e| JobError::Worker(e.to_string()))?,
            )
        }
        None => (None, serde_json::Value::Null),
    };
    let diagnostics = match &models_skipped {
        None => json!({ "models": models, "summary": outcome.summary }),
        Some(why) => json!({ "models": null, "models_skipped": why, "summary": outcome.summary }),
    };
    let phases_before_write = clock.elapsed();
    let run = NewScoreRun {
        started_at: now,
        finished_at: micros_after(now, phases_before_write),
        as_of: today.to_string(),
        orders: stats.orders,
        model,
        diagnostics,
    };
    let write = Instant::now();
    let run = store.write_pushed_scores(&mut conn, &run).await?;
    let stages = outcome.summary.stages.iter().map(|g| (stage_name(&g.name), g.customers)).collect();
    let phases = vec![("database", stats.engine_time), ("models", stats.kanta_time), ("write", write.elapsed())];
    Ok(ScoreOutcome { run, models_skipped, stages, phases, product_groups: Duration::ZERO, pushdown: Some(stats) })
}

/// A store without purchases: the run is recorded with no scores, as in memory.
async fn nothing_to_score(
    store: &dyn Storage,
    today: Day,
    orders: u64,
    now: i64,
    took: Duration,
) -> Result<ScoreOutcome, JobError> {
    let run = NewScoreRun {
        started_at: now,
        finished_at: micros_after(now, took),
        as_of: today.to_string(),
        orders,
        model: None,
        diagnostics: json!({ "models": null, "models_skipped": NO_PURCHASES }),
    };
    let run = store.write_scores(&run, &[]).await?;
    Ok(ScoreOutcome {
        run,
        models_skipped: Some(NO_PURCHASES.into()),
        stages: Vec::new(),
        phases: vec![("database", took)],
        product_groups: Duration::ZERO,
        pushdown: None,
    })
}
