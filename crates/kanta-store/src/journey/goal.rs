//! Goals and the uplift report's rows: conversions credited to the run they fall in, and, per
//! customer's first entry into a journey, what the report compares between the arms.
//!
//! A conversion is the first time a run's customer reaches the journey's goal within its window
//! after entering (`entered_at ≤ time < entered_at + within`), written for treatment and
//! control runs alike — the control arm is "followed for the goal" exactly as the treated one,
//! or the comparison would be biased. When several runs of the customer are open for it, the
//! latest entered one gets it; a run converts once (the table's key).
//!
//! The report's unit is the customer, from their **first** entry into the journey: the arm is a
//! function of (customer, journey), so later entries are the same customer again, not new
//! randomised units, and counting them would weigh frequent entrants more and understate the
//! intervals. Revenue is the customer's net purchases (refunds negative, cancelled orders out:
//! [`kanta_domain::purchase`]) in the window after entry, and in the 365 days before it for
//! CUPED — read from the orders table for both arms, whatever the goal is.

use std::time::Duration;

use kanta_domain::Timestamp;
use kanta_domain::purchase::{IN_LOG_SQL, PURCHASE_SQL, SIGNED_AMOUNT_SQL};

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::parse_enum;
use crate::journey::run::{RunArm, RunId};
use crate::sql::{Row, query};
use crate::store::Store;

/// What reached a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalSource {
    /// An order (`orders.id`): its signed amount is the conversion's revenue.
    Order(i64),
    /// An event (`events.id`, if known).
    Event(Option<i64>),
    /// A segment entry.
    Segment,
}

/// A goal reached by a customer, to credit to the run it falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversion<'a> {
    /// The journey whose goal it is.
    pub journey: &'a str,
    /// The customer (internal id).
    pub customer: i64,
    /// When the goal was reached (the order's or event's own time).
    pub at: Timestamp,
    /// The goal's window after entry.
    pub within: Duration,
    /// What reached it.
    pub source: GoalSource,
}

/// One customer's first entry into a journey, as the uplift report reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpliftEntry {
    /// The first run.
    pub run: RunId,
    /// The customer (internal id).
    pub customer: i64,
    /// The arm.
    pub arm: RunArm,
    /// When they entered.
    pub entered_at: Timestamp,
    /// When that run converted, if it did.
    pub converted_at: Option<Timestamp>,
    /// Net purchases (Money units) in `[entered_at, entered_at + window)`.
    pub revenue_after: i64,
    /// Purchases (completed orders with a positive amount) in the same window.
    pub orders_after: i64,
    /// Net purchases (Money units) in `[entered_at − pre_window, entered_at)`.
    pub revenue_before: i64,
    /// Messages sent to the customer by the run (`sent`).
    pub messages_sent: i64,
    /// The customer's predicted 12-month CLV from the latest scoring run, if scored.
    pub clv_12m: Option<f64>,
}

/// Revenue at risk now, as `kanta analyze` reports it: the customers the latest scoring run
/// calls lapsing or lost, and their net purchases in the 365 days before `now`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RevenueAtRisk {
    /// Customers now lapsing.
    pub lapsing_customers: i64,
    /// Their net purchases in the last 12 months (Money units).
    pub lapsing_revenue_12m: i64,
    /// Customers now lost.
    pub lost_customers: i64,
    /// Their net purchases in the last 12 months (Money units).
    pub lost_revenue_12m: i64,
}

/// A run's choice at a `split` step, from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitChoice {
    /// The run.
    pub run: RunId,
    /// The split step's id.
    pub step: String,
    /// The arm taken (0-based).
    pub arm: u32,
}

/// How many runs passed a step with an outcome (`sent`, `waited`, `branch_then`, `split`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FunnelRow {
    /// The step's id.
    pub step: String,
    /// What happened there.
    pub outcome: String,
    /// Distinct runs.
    pub runs: i64,
}

/// Goals and the uplift report's rows.
#[async_trait::async_trait]
pub trait GoalStore: Send + Sync {
    /// Credit a goal reached to the latest run of the customer in the journey entered at or
    /// before `at` and less than `within` before it that has not converted yet; returns that
    /// run, or `None` when no run is open for it. Idempotent: the same arrival (customer,
    /// journey, time and source) credited again writes nothing.
    async fn record_conversion(
        &self,
        conversion: &NewConversion<'_>,
        now: Timestamp,
    ) -> Result<Option<RunId>, StoreError>;

    /// Customers' first entries into `journey` after run `after`, by run id, at most `limit`,
    /// with their conversion and revenue after (within `window`) and before (within
    /// `pre_window`) entry; with the position to go on from when there may be more.
    async fn uplift_entries(
        &self,
        journey: &str,
        window: Duration,
        pre_window: Duration,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<UpliftEntry>, Option<RunId>), StoreError>;

    /// Every run of `journey` (all entries, not only first ones) by arm.
    async fn entries_by_arm(&self, journey: &str) -> Result<Vec<(RunArm, i64)>, StoreError>;

    /// The arms runs of `journey` took at its `split` steps, after run `after`, by run, at most
    /// `limit` rows; with the position to go on from when there may be more.
    async fn split_choices(
        &self,
        journey: &str,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<SplitChoice>, Option<RunId>), StoreError>;

    /// Per step and outcome, the runs of `journey` (any version) that passed it.
    async fn step_funnel(&self, journey: &str) -> Result<Vec<FunnelRow>, StoreError>;

    /// Revenue at risk at `now` ([`RevenueAtRisk`]).
    async fn revenue_at_risk(&self, now: Timestamp) -> Result<RevenueAtRisk, StoreError>;
}

/// A duration in microseconds, saturated.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(super) async fn record<DB: Dialect>(
    store: &Store<DB>,
    c: &NewConversion<'_>,
    now: Timestamp,
) -> Result<Option<RunId>, StoreError> {
    let (source, ref_id) = match c.source {
        GoalSource::Order(id) => ("order", Some(id)),
        GoalSource::Event(id) => ("event", id),
        GoalSource::Segment => ("segment", None),
    };
    let revenue = if source == "order" {
        format!("(SELECT {SIGNED_AMOUNT_SQL} FROM orders o WHERE o.id = $5 AND {IN_LOG_SQL})")
    } else {
        "NULL".to_owned()
    };
    // One statement: the run picked and the row written together. The key (run_id) makes a
    // run convert once; the second NOT EXISTS makes the same arrival credited again (a feed row
    // handled twice after a crash) write nothing rather than convert an older open run.
    let sql = format!(
        "INSERT INTO journey_conversions (run_id, journey, customer_id, time, source, ref_id, revenue, created_at) \
         SELECT r.id, r.journey, r.customer_id, $3, $4, $5, {revenue}, $7 FROM journey_runs r \
         WHERE r.journey = $1 AND r.customer_id = $2 AND r.entered_at <= $3 AND r.entered_at > $3 - $6 \
         AND NOT EXISTS (SELECT 1 FROM journey_conversions c WHERE c.run_id = r.id) \
         AND NOT EXISTS (SELECT 1 FROM journey_conversions c WHERE c.customer_id = $2 AND c.journey = $1 \
         AND c.time = $3 AND c.source = $4) \
         ORDER BY r.entered_at DESC, r.id DESC LIMIT 1 \
         ON CONFLICT DO NOTHING RETURNING run_id"
    );
    let row = query(&sql)
        .bind(c.journey)
        .bind(c.customer)
        .bind(c.at.micros())
        .bind(source)
        .bind(ref_id)
        .bind(micros(c.within))
        .bind(now.micros())
        .fetch_optional(&store.writer)
        .await?;
    row.map(|r| Ok(RunId(r.try_get(0)?))).transpose()
}

pub(super) async fn entries<DB: Dialect>(
    store: &Store<DB>,
    journey: &str,
    window: Duration,
    pre_window: Duration,
    after: Option<RunId>,
    limit: u32,
) -> Result<(Vec<UpliftEntry>, Option<RunId>), StoreError> {
    let revenue = |from: &str, to: &str| {
        format!(
            "(SELECT CAST(COALESCE(SUM({SIGNED_AMOUNT_SQL}), 0) AS BIGINT) FROM orders o \
             WHERE o.customer_id = r.customer_id AND o.time >= {from} AND o.time < {to} AND {IN_LOG_SQL})"
        )
    };
    let sql = format!(
        "SELECT r.id, r.customer_id, r.arm, r.entered_at, c.time AS converted_at, {after} AS revenue_after, \
         {before} AS revenue_before, \
         (SELECT COUNT(*) FROM orders o WHERE o.customer_id = r.customer_id AND o.time >= r.entered_at \
         AND o.time < r.entered_at + $3 AND {PURCHASE_SQL}) AS orders_after, \
         (SELECT COUNT(*) FROM journey_messages m WHERE m.run_id = r.id AND m.status = 'sent') AS sent, \
         (SELECT s.clv_12m FROM scores s WHERE s.customer_id = r.customer_id) AS clv \
         FROM journey_runs r LEFT JOIN journey_conversions c ON c.run_id = r.id \
         WHERE r.journey = $1 AND r.id > $2 \
         AND NOT EXISTS (SELECT 1 FROM journey_runs e WHERE e.customer_id = r.customer_id AND e.journey = r.journey \
         AND (e.entered_at < r.entered_at OR (e.entered_at = r.entered_at AND e.id < r.id))) \
         ORDER BY r.id LIMIT $5",
        after = revenue("r.entered_at", "r.entered_at + $3"),
        before = revenue("r.entered_at - $4", "r.entered_at"),
    );
    let rows = query(&sql)
        .bind(journey)
        .bind(after.map_or(0, |r| r.0))
        .bind(micros(window))
        .bind(micros(pre_window))
        .bind(i64::from(limit))
        .fetch_all(&store.reader)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let arm: String = r.try_get("arm")?;
        out.push(UpliftEntry {
            run: RunId(r.try_get("id")?),
            customer: r.try_get("customer_id")?,
            arm: parse_enum(&arm, &RunArm::ALL, "run arm")?,
            entered_at: Timestamp::from_micros(r.try_get("entered_at")?),
            converted_at: r.try_get::<Option<i64>, _>("converted_at")?.map(Timestamp::from_micros),
            revenue_after: r.try_get("revenue_after")?,
            orders_after: r.try_get("orders_after")?,
            revenue_before: r.try_get("revenue_before")?,
            messages_sent: r.try_get("sent")?,
            clv_12m: r.try_get("clv")?,
        });
    }
    // A full page may have more behind it (the rows are by run id, but the first-entry filter
    // skips some ids, so the position is the last row's id).
    let next = (out.len() == limit as usize).then(|| out.last().map(|e| e.run)).flatten();
    Ok((out, next))
}

pub(super) async fn by_arm<DB: Dialect>(store: &Store<DB>, journey: &str) -> Result<Vec<(RunArm, i64)>, StoreError> {
    // Grouped in the order of the (journey, version, status, arm) index, which streams, then
    // summed per arm here: grouping by arm alone made the database sort a million entries.
    let rows = query("SELECT arm, COUNT(*) FROM journey_runs WHERE journey = $1 GROUP BY version, status, arm")
        .bind(journey)
        .fetch_all(&store.reader)
        .await?;
    let mut by_arm: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for r in &rows {
        *by_arm.entry(r.try_get(0)?).or_default() += r.try_get::<i64, _>(1)?;
    }
    by_arm.into_iter().map(|(arm, n)| Ok((parse_enum(&arm, &RunArm::ALL, "run arm")?, n))).collect()
}

pub(super) async fn splits<DB: Dialect>(
    store: &Store<DB>,
    journey: &str,
    after: Option<RunId>,
    limit: u32,
) -> Result<(Vec<SplitChoice>, Option<RunId>), StoreError> {
    // Whole runs per page: the limit counts runs, so a run's choices never straddle two pages.
    let rows = query(
        "SELECT s.run_id, s.step, s.detail FROM journey_steps s \
         WHERE s.outcome = 'split' AND s.run_id IN (SELECT r.id FROM journey_runs r WHERE r.journey = $1 \
         AND r.id > $2 AND r.arm = 'treatment' ORDER BY r.id LIMIT $3) ORDER BY s.run_id, s.id",
    )
    .bind(journey)
    .bind(after.map_or(0, |r| r.0))
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let detail: Option<String> = r.try_get("detail")?;
        let arm = detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|d| d.get("arm").and_then(serde_json::Value::as_u64))
            .and_then(|a| u32::try_from(a).ok());
        // A split recorded without its arm (an erased customer's redacted history) says nothing.
        let Some(arm) = arm else { continue };
        out.push(SplitChoice { run: RunId(r.try_get("run_id")?), step: r.try_get("step")?, arm });
    }
    // The page's last run: the treated runs after `after`, by id, at most `limit`.
    let last = query(
        "SELECT MAX(id) AS last, COUNT(*) AS n FROM (SELECT r.id FROM journey_runs r WHERE r.journey = $1 \
         AND r.id > $2 AND r.arm = 'treatment' ORDER BY r.id LIMIT $3) page",
    )
    .bind(journey)
    .bind(after.map_or(0, |r| r.0))
    .bind(i64::from(limit))
    .fetch_one(&store.reader)
    .await?;
    let n: i64 = last.try_get("n")?;
    let next = if n == i64::from(limit) { last.try_get::<Option<i64>, _>("last")?.map(RunId) } else { None };
    Ok((out, next))
}

pub(super) async fn funnel<DB: Dialect>(store: &Store<DB>, journey: &str) -> Result<Vec<FunnelRow>, StoreError> {
    let rows = query(
        "SELECT s.step, s.outcome, COUNT(DISTINCT s.run_id) AS runs FROM journey_steps s \
         JOIN journey_runs r ON r.id = s.run_id WHERE r.journey = $1 GROUP BY s.step, s.outcome \
         ORDER BY s.step, s.outcome",
    )
    .bind(journey)
    .fetch_all(&store.reader)
    .await?;
    rows.iter()
        .map(|r| Ok(FunnelRow { step: r.try_get("step")?, outcome: r.try_get("outcome")?, runs: r.try_get("runs")? }))
        .collect()
}

pub(super) async fn at_risk<DB: Dialect>(store: &Store<DB>, now: Timestamp) -> Result<RevenueAtRisk, StoreError> {
    let sql = format!(
        "SELECT stage, COUNT(*) AS customers, CAST(COALESCE(SUM(revenue), 0) AS BIGINT) AS revenue FROM \
         (SELECT s.stage, (SELECT COALESCE(SUM({SIGNED_AMOUNT_SQL}), 0) FROM orders o \
         WHERE o.customer_id = s.customer_id AND o.time > $1 AND o.time <= $2 AND {IN_LOG_SQL}) AS revenue \
         FROM scores s WHERE s.stage IN ('lapsing', 'lost')) at_risk GROUP BY stage"
    );
    let year = micros(Duration::from_secs(365 * 86_400));
    let rows = query(&sql).bind(now.micros().saturating_sub(year)).bind(now.micros()).fetch_all(&store.reader).await?;
    let mut out = RevenueAtRisk::default();
    for r in &rows {
        let (stage, customers, revenue): (String, i64, i64) =
            (r.try_get("stage")?, r.try_get("customers")?, r.try_get("revenue")?);
        match stage.as_str() {
            "lapsing" => (out.lapsing_customers, out.lapsing_revenue_12m) = (customers, revenue),
            _ => (out.lost_customers, out.lost_revenue_12m) = (customers, revenue),
        }
    }
    Ok(out)
}
