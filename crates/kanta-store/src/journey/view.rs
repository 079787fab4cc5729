//! What the API, the CLI and `/metrics` show of journeys: the list, one journey's versions and
//! steps, its runs, a customer's runs with their steps and messages, the messages in doubt, and
//! the outbox's numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use kanta_domain::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::outbox::{Channel, MessageId, MessageStatus};
use crate::journey::run::{RunArm, RunId};
use crate::journey::{opt_time, parse_enum, parse_json, serialize_at, serialize_opt_at};
use crate::sql::{Row, query};
use crate::store::{Store, keyset_page};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// On its way.
    Active,
    /// Reached the end.
    Completed,
    /// Ended early (an exit condition, an erasure).
    Exited,
    /// In a holdout (control) arm: recorded as entered and followed for the goal, no step.
    HeldOut,
}

impl RunStatus {
    const ALL: [(RunStatus, &'static str); 4] = [
        (RunStatus::Active, "active"),
        (RunStatus::Completed, "completed"),
        (RunStatus::Exited, "exited"),
        (RunStatus::HeldOut, "held_out"),
    ];
}

/// A journey in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JourneySummary {
    /// The name.
    pub name: String,
    /// The version new runs start on.
    pub version: i64,
    /// Whether it is paused.
    pub paused: bool,
    /// Active runs, on any version.
    pub active_runs: i64,
    /// When it was last applied, paused or resumed, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub updated_at: Timestamp,
}

/// One version of a journey and its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VersionInfo {
    /// 1, 2, …
    pub version: i64,
    /// The document's digest.
    pub digest: String,
    /// When it was applied, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub created_at: Timestamp,
    /// Runs on it now.
    pub active_runs: i64,
    /// Runs on it that completed.
    pub completed_runs: i64,
    /// Runs on it that exited.
    pub exited_runs: i64,
    /// Runs on it held out as control (the journey's holdout or the global one).
    pub held_out_runs: i64,
}

/// One step of one version: runs there now, and its messages by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StepCounts {
    /// The version.
    pub version: i64,
    /// The step's id.
    pub step: String,
    /// Active runs at this step.
    pub active_runs: i64,
    /// Messages of this step by status (`sent`, `in_doubt`, …).
    pub messages: BTreeMap<String, i64>,
}

/// One journey in detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JourneyReport {
    /// Name, current version, pause state, active runs.
    #[serde(flatten)]
    pub summary: JourneySummary,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Steps with runs or messages, by version and step id.
    pub steps: Vec<StepCounts>,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunView {
    /// The run.
    pub id: RunId,
    /// The journey.
    pub journey: String,
    /// The version it runs on.
    pub version: i64,
    /// The customer's external id.
    pub customer: String,
    /// The trigger's key (empty for none).
    pub key: String,
    /// Active, completed or exited.
    pub status: RunStatus,
    /// The step it is at (or ended at).
    pub step: String,
    /// When it is due next, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_opt_at")]
    pub due_at: Option<Timestamp>,
    /// The event it waits for.
    pub wait_event: Option<String>,
    /// The segment it waits to enter.
    pub wait_segment: Option<String>,
    /// When the customer entered, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub entered_at: Timestamp,
    /// When it ended, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_opt_at")]
    pub ended_at: Option<Timestamp>,
    /// Why it exited.
    pub exit_reason: Option<String>,
    /// The holdout arm: `treatment`, or `control` / `global_control` for a held-out run.
    pub arm: RunArm,
}

/// A step of a run's history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepView {
    /// The step's id.
    pub step: String,
    /// The visit.
    pub occurrence: i64,
    /// When, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub at: Timestamp,
    /// What happened.
    pub outcome: String,
    /// Details.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

/// A message as listed (without its payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageView {
    /// The message.
    pub id: MessageId,
    /// Its Message-ID.
    pub message_id: String,
    /// The run that sent it.
    pub run: RunId,
    /// The journey.
    pub journey: String,
    /// The version.
    pub version: i64,
    /// The step.
    pub step: String,
    /// The visit of the step.
    pub occurrence: i64,
    /// The customer's external id.
    pub customer: String,
    /// Email or webhook.
    pub channel: Channel,
    /// Exempt from caps.
    pub transactional: bool,
    /// The address (or URL).
    pub recipient: String,
    /// Where it is.
    pub status: MessageStatus,
    /// Claims so far.
    pub attempts: i64,
    /// Not before, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub not_before: Timestamp,
    /// Queued, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub created_at: Timestamp,
    /// Last claimed, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_opt_at")]
    pub claimed_at: Option<Timestamp>,
    /// Accepted by the server, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_opt_at")]
    pub sent_at: Option<Timestamp>,
    /// The server's last answer, or why it was not sent.
    pub last_response: Option<String>,
}

/// A customer's run with its history and messages (the customer 360).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerRun {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// The steps it passed, in order.
    pub steps: Vec<StepView>,
    /// Its messages, in order.
    pub messages: Vec<MessageView>,
}

/// Messages of one journey step in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageCount {
    /// The journey.
    pub journey: String,
    /// The step.
    pub step: String,
    /// The status.
    pub status: MessageStatus,
    /// How many.
    pub count: i64,
}

/// The outbox's numbers, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JourneyMetrics {
    /// Messages by journey, step and status (every version together).
    pub messages: Vec<MessageCount>,
    /// Messages waiting to be sent: `pending` and `retry`, due or not.
    pub outbox_depth: i64,
    /// Of those, the ones due now (`not_before` reached) and not yet claimed.
    pub outbox_due: i64,
    /// How long the oldest due message has been due (none when nothing is due).
    pub oldest_due_age: Option<Duration>,
    /// Messages in doubt.
    pub in_doubt: i64,
    /// Active runs by journey (every applied journey, zero included), by name.
    pub active_runs: Vec<(String, i64)>,
    /// Rows of the journey feed (new orders and events, transitions) not yet handled.
    pub feed_depth: i64,
}

const SUMMARY_SELECT: &str = "SELECT h.name, h.version, h.paused, h.updated_at, \
     (SELECT COUNT(*) FROM journey_runs r WHERE r.journey = h.name AND r.status = 'active') AS active_runs \
     FROM journey_heads h WHERE h.version > 0";

fn summary<R: Row>(r: &R) -> Result<JourneySummary, StoreError> {
    Ok(JourneySummary {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        paused: r.try_get("paused")?,
        active_runs: r.try_get("active_runs")?,
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

pub(super) async fn journeys<DB: Dialect>(store: &Store<DB>) -> Result<Vec<JourneySummary>, StoreError> {
    let rows = query(&format!("{SUMMARY_SELECT} ORDER BY h.name")).fetch_all(&store.reader).await?;
    rows.iter().map(summary).collect()
}

pub(super) async fn report<DB: Dialect>(store: &Store<DB>, name: &str) -> Result<Option<JourneyReport>, StoreError> {
    let mut conn = store.reader.acquire().await?;
    let Some(row) = query(&format!("{SUMMARY_SELECT} AND h.name = $1")).bind(name).fetch_optional(&mut conn).await?
    else {
        return Ok(None);
    };
    let summary = summary(&row)?;
    let runs =
        query("SELECT version, status, COUNT(*) AS n FROM journey_runs WHERE journey = $1 GROUP BY version, status")
            .bind(name)
            .fetch_all(&mut conn)
            .await?;
    let mut versions: Vec<VersionInfo> =
        query("SELECT version, digest, created_at FROM journeys WHERE name = $1 ORDER BY version")
            .bind(name)
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| {
                Ok(VersionInfo {
                    version: r.try_get("version")?,
                    digest: r.try_get("digest")?,
                    created_at: Timestamp::from_micros(r.try_get("created_at")?),
                    active_runs: 0,
                    completed_runs: 0,
                    exited_runs: 0,
                    held_out_runs: 0,
                })
            })
            .collect::<Result<_, StoreError>>()?;
    for r in &runs {
        let version: i64 = r.try_get("version")?;
        let status = parse_enum(&r.try_get::<String, _>("status")?, &RunStatus::ALL, "run status")?;
        let n: i64 = r.try_get("n")?;
        if let Some(v) = versions.iter_mut().find(|v| v.version == version) {
            match status {
                RunStatus::Active => v.active_runs = n,
                RunStatus::Completed => v.completed_runs = n,
                RunStatus::Exited => v.exited_runs = n,
                RunStatus::HeldOut => v.held_out_runs = n,
            }
        }
    }

    let mut steps: BTreeMap<(i64, String), StepCounts> = BTreeMap::new();
    let at_steps = query(
        "SELECT version, step, COUNT(*) AS n FROM journey_runs WHERE journey = $1 AND status = 'active' \
         GROUP BY version, step",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await?;
    for r in &at_steps {
        step_counts(&mut steps, r.try_get("version")?, r.try_get("step")?).active_runs = r.try_get("n")?;
    }
    let messages = query(
        "SELECT version, step, status, COUNT(*) AS n FROM journey_messages WHERE journey = $1 \
         GROUP BY version, step, status",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await?;
    for r in &messages {
        step_counts(&mut steps, r.try_get("version")?, r.try_get("step")?)
            .messages
            .insert(r.try_get("status")?, r.try_get("n")?);
    }
    Ok(Some(JourneyReport { summary, versions, steps: steps.into_values().collect() }))
}

/// The counts of a version's step, created empty.
fn step_counts(steps: &mut BTreeMap<(i64, String), StepCounts>, version: i64, step: String) -> &mut StepCounts {
    steps.entry((version, step.clone())).or_insert_with(|| StepCounts {
        version,
        step,
        active_runs: 0,
        messages: BTreeMap::new(),
    })
}

const RUN_SELECT: &str = "SELECT r.id, r.journey, r.version, c.external_id, r.run_key, r.status, r.step, r.due_at, \
     r.wait_event, r.wait_segment, r.entered_at, r.ended_at, r.exit_reason, r.arm \
     FROM journey_runs r JOIN customers c ON c.id = r.customer_id";

fn run_view<R: Row>(r: &R) -> Result<RunView, StoreError> {
    Ok(RunView {
        id: RunId(r.try_get("id")?),
        journey: r.try_get("journey")?,
        version: r.try_get("version")?,
        customer: r.try_get("external_id")?,
        key: r.try_get("run_key")?,
        status: parse_enum(&r.try_get::<String, _>("status")?, &RunStatus::ALL, "run status")?,
        step: r.try_get("step")?,
        due_at: opt_time(r.try_get("due_at")?),
        wait_event: r.try_get("wait_event")?,
        wait_segment: r.try_get("wait_segment")?,
        entered_at: Timestamp::from_micros(r.try_get("entered_at")?),
        ended_at: opt_time(r.try_get("ended_at")?),
        exit_reason: r.try_get("exit_reason")?,
        arm: parse_enum(&r.try_get::<String, _>("arm")?, &RunArm::ALL, "run arm")?,
    })
}

pub(super) async fn runs<DB: Dialect>(
    store: &Store<DB>,
    name: &str,
    after: Option<RunId>,
    limit: u32,
) -> Result<(Vec<RunView>, Option<RunId>), StoreError> {
    let rows = query(&format!("{RUN_SELECT} WHERE r.journey = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"))
        .bind(name)
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&store.reader)
        .await?;
    let (runs, next) = keyset_page(&rows, limit, run_view)?;
    Ok((runs, next.map(RunId)))
}

const MESSAGE_SELECT: &str = "SELECT m.id, m.message_id, m.run_id, m.journey, m.version, m.step, m.occurrence, \
     c.external_id, m.channel, m.transactional, m.recipient, m.status, m.attempts, m.not_before, m.created_at, \
     m.claimed_at, m.sent_at, m.last_response FROM journey_messages m JOIN customers c ON c.id = m.customer_id";

fn message_view<R: Row>(r: &R) -> Result<MessageView, StoreError> {
    Ok(MessageView {
        id: MessageId(r.try_get("id")?),
        message_id: r.try_get("message_id")?,
        run: RunId(r.try_get("run_id")?),
        journey: r.try_get("journey")?,
        version: r.try_get("version")?,
        step: r.try_get("step")?,
        occurrence: r.try_get("occurrence")?,
        customer: r.try_get("external_id")?,
        channel: Channel::parse(&r.try_get::<String, _>("channel")?)?,
        transactional: r.try_get("transactional")?,
        recipient: r.try_get("recipient")?,
        status: MessageStatus::parse(&r.try_get::<String, _>("status")?)?,
        attempts: r.try_get("attempts")?,
        not_before: Timestamp::from_micros(r.try_get("not_before")?),
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        claimed_at: opt_time(r.try_get("claimed_at")?),
        sent_at: opt_time(r.try_get("sent_at")?),
        last_response: r.try_get("last_response")?,
    })
}

pub(super) async fn in_doubt<DB: Dialect>(store: &Store<DB>) -> Result<Vec<MessageView>, StoreError> {
    let rows =
        query(&format!("{MESSAGE_SELECT} WHERE m.status = 'in_doubt' ORDER BY m.id")).fetch_all(&store.reader).await?;
    rows.iter().map(message_view).collect()
}

pub(super) async fn customer_runs<DB: Dialect>(
    store: &Store<DB>,
    customer: &str,
) -> Result<Vec<CustomerRun>, StoreError> {
    let mut conn = store.reader.acquire().await?;
    let Some(row) =
        query("SELECT id FROM customers WHERE external_id = $1").bind(customer).fetch_optional(&mut conn).await?
    else {
        return Ok(Vec::new());
    };
    let internal: i64 = row.try_get(0)?;
    let runs = query(&format!("{RUN_SELECT} WHERE r.customer_id = $1 ORDER BY r.id"))
        .bind(internal)
        .fetch_all(&mut conn)
        .await?;
    let mut out: Vec<CustomerRun> = runs
        .iter()
        .map(|r| Ok(CustomerRun { run: run_view(r)?, steps: Vec::new(), messages: Vec::new() }))
        .collect::<Result<_, StoreError>>()?;
    let steps = query(
        "SELECT s.run_id, s.step, s.occurrence, s.time, s.outcome, s.detail FROM journey_steps s \
         JOIN journey_runs r ON r.id = s.run_id WHERE r.customer_id = $1 ORDER BY s.id",
    )
    .bind(internal)
    .fetch_all(&mut conn)
    .await?;
    for r in &steps {
        let run = RunId(r.try_get("run_id")?);
        let detail: Option<String> = r.try_get("detail")?;
        let view = StepView {
            step: r.try_get("step")?,
            occurrence: r.try_get("occurrence")?,
            at: Timestamp::from_micros(r.try_get("time")?),
            outcome: r.try_get("outcome")?,
            detail: detail.as_deref().map(|d| parse_json(d, "step detail")).transpose()?,
        };
        if let Some(entry) = out.iter_mut().find(|e| e.run.id == run) {
            entry.steps.push(view);
        }
    }
    let messages = query(&format!("{MESSAGE_SELECT} WHERE m.customer_id = $1 ORDER BY m.id"))
        .bind(internal)
        .fetch_all(&mut conn)
        .await?;
    for r in &messages {
        let view = message_view(r)?;
        if let Some(entry) = out.iter_mut().find(|e| e.run.id == view.run) {
            entry.messages.push(view);
        }
    }
    Ok(out)
}

pub(super) async fn metrics<DB: Dialect>(store: &Store<DB>, now: Timestamp) -> Result<JourneyMetrics, StoreError> {
    let mut conn = store.reader.acquire().await?;
    let messages = query(
        "SELECT journey, step, status, COUNT(*) AS n FROM journey_messages GROUP BY journey, step, status \
         ORDER BY journey, step, status",
    )
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| {
        Ok(MessageCount {
            journey: r.try_get("journey")?,
            step: r.try_get("step")?,
            status: MessageStatus::parse(&r.try_get::<String, _>("status")?)?,
            count: r.try_get("n")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let row = query(
        "SELECT (SELECT COUNT(*) FROM journey_messages WHERE status IN ('pending', 'retry')) AS depth, \
         (SELECT COUNT(*) FROM journey_messages WHERE status IN ('pending', 'retry') AND not_before <= $1) AS due, \
         (SELECT MIN(not_before) FROM journey_messages WHERE status IN ('pending', 'retry') AND not_before <= $1) \
         AS oldest, (SELECT COUNT(*) FROM journey_messages WHERE status = 'in_doubt') AS in_doubt, \
         (SELECT COUNT(*) FROM journey_feed) AS feed_depth",
    )
    .bind(now.micros())
    .fetch_one(&mut conn)
    .await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    let active_runs = query(
        "SELECT h.name, (SELECT COUNT(*) FROM journey_runs r WHERE r.journey = h.name AND r.status = 'active') AS n \
         FROM journey_heads h WHERE h.version > 0 ORDER BY h.name",
    )
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("name")?, r.try_get("n")?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(JourneyMetrics {
        messages,
        outbox_depth: row.try_get("depth")?,
        outbox_due: row.try_get("due")?,
        active_runs,
        oldest_due_age: oldest
            .map(|t| Duration::from_micros(u64::try_from(now.micros().saturating_sub(t)).unwrap_or(0))),
        in_doubt: row.try_get("in_doubt")?,
        feed_depth: row.try_get("feed_depth")?,
    })
}
