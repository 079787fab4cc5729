//! Runs: one customer's way through one journey version, with its history (`journey_steps`).
//!
//! A run is started once per journey, customer and key while active (a partial unique index);
//! the engine claims due runs with a lease, decides in memory, and writes the outcome back with
//! [`advance`]: the new position, the steps passed and the messages to send, in one
//! transaction that only commits while the lease holds. So a crash at any point leaves the run
//! either before the step (claimed again when the lease runs out, and done again, enqueueing
//! nothing twice) or after it.

use std::fmt;
use std::time::Duration;

use kanta_domain::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::outbox::{self, NewMessage};
use crate::journey::{Lease, lease_end, opt_time, parse_json};
use crate::sql::{QueryBuilder, Row, Tx, query};
use crate::store::Store;

/// A run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A customer entering a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun<'a> {
    /// The journey's name.
    pub journey: &'a str,
    /// The version to run (the current one, as [`crate::JourneyStore::journey_heads`] gave it).
    pub version: i64,
    /// The customer (internal id).
    pub customer: i64,
    /// The trigger's key (a cart id, say): one active run per customer and key. Empty for a
    /// trigger without a key.
    pub key: &'a str,
    /// The first step.
    pub step: &'a str,
    /// When the first step is due (usually at once); `None` only with `wait`.
    pub due_at: Option<Timestamp>,
    /// What the first step waits for, if anything.
    pub wait: Option<Wait>,
    /// The trigger's properties, for templates and conditions.
    pub context: &'a Value,
    /// The holdout arm the customer is in: a control run is recorded already ended
    /// (`held_out`), never due.
    pub arm: RunArm,
}

/// The arm of a run's customer, decided by the engine when they became eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunArm {
    /// Gets the journey's steps.
    #[default]
    Treatment,
    /// In the journey's holdout: followed for the goal, sent nothing.
    Control,
    /// In the settings' global holdout, kept out of every marketing journey: like `control`.
    GlobalControl,
}

impl RunArm {
    /// Every arm with its stored name.
    pub const ALL: [(RunArm, &'static str); 3] =
        [(RunArm::Treatment, "treatment"), (RunArm::Control, "control"), (RunArm::GlobalControl, "global_control")];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunArm::Treatment => "treatment",
            RunArm::Control => "control",
            RunArm::GlobalControl => "global_control",
        }
    }

    /// Whether the customer is held out (either control arm).
    pub fn is_control(self) -> bool {
        self != RunArm::Treatment
    }
}

/// Whether a customer who ran through a journey before may enter it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reentry {
    /// Never: one run per customer and key, ever (the default of journeys).
    Once,
    /// Only if no run of the customer and key entered at or after this instant (the engine
    /// passes `now` minus the journey's `after:` period).
    Since(Timestamp),
    /// Whenever no run is active.
    Always,
}

/// The rules checked when a customer enters a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRules {
    /// Re-entry after an earlier run.
    pub reentry: Reentry,
    /// At most this many active runs of the customer across all journeys.
    pub max_active: Option<u32>,
    /// The key names an **occurrence** of a calendar trigger (`2026-12-04` for a date, the
    /// RFC 3339 instant of a cron run), not a separate conversation: a customer never enters
    /// twice for the same key, whatever `reentry` says and even after the first run ended (so
    /// a window evaluated twice, after a crash or by two servers, enters nobody again), while
    /// the active-run check and `reentry` count every run of the journey, whatever its key (a
    /// birthday run still waiting keeps next year's out; `after: 30d` spans occurrences).
    pub once_per_key: bool,
}

/// What [`crate::JourneyStore::start_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// A run was started.
    Started(RunId),
    /// The customer is in a control arm: a run was recorded as entered and held out (ended,
    /// never due), to be followed for the goal.
    HeldOut(RunId),
    /// The customer has an active run of the journey with the key already.
    AlreadyActive(RunId),
    /// The re-entry rule forbids another run.
    NotAgain,
    /// The customer has [`EntryRules::max_active`] active runs already.
    AtLimit,
}

/// What a run waits for besides its due time (which is then the timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// An event of the customer, by name; when `keyed`, only one with the run's key.
    Event {
        /// The event's name.
        name: String,
        /// Whether the event must carry the run's key.
        keyed: bool,
    },
    /// The customer entering a segment, by name.
    Segment {
        /// The segment's name.
        name: String,
    },
}

/// Something that arrived for a customer and may end runs' waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal<'a> {
    /// An event, for the customer's waits on it that are not keyed.
    Event {
        /// The event's name.
        name: &'a str,
    },
    /// An event, for the keyed waits (`match_key`) of one journey's runs: those whose key is
    /// `key`; all of them when the event has no value for the journey's key property (an
    /// order without a cart id is about none of the carts in particular, so it ends every
    /// cart's wait, as "placed an order since" does in other tools).
    KeyedEvent {
        /// The event's name.
        name: &'a str,
        /// The journey whose runs' keys are compared.
        journey: &'a str,
        /// The event's value of the journey's key property, if it has one.
        key: Option<&'a str>,
    },
    /// The customer entered a segment.
    SegmentEntry {
        /// The segment's name.
        name: &'a str,
    },
}

/// A run handed to a worker by [`crate::JourneyStore::claim_due_runs`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    /// The run.
    pub id: RunId,
    /// The journey's name.
    pub journey: String,
    /// The version it runs on.
    pub version: i64,
    /// The customer (internal id).
    pub customer: i64,
    /// The trigger's key (empty for none).
    pub key: String,
    /// The step it is at.
    pub step: String,
    /// When it became due.
    pub due_at: Option<Timestamp>,
    /// What it was waiting for (cleared when that arrived).
    pub wait: Option<Wait>,
    /// When the awaited event or segment entry arrived; `None` at a wait step means the wait
    /// timed out.
    pub woken_at: Option<Timestamp>,
    /// When the customer entered.
    pub entered_at: Timestamp,
    /// The trigger's properties.
    pub context: Value,
    /// The worker's hold on it.
    pub lease: Lease,
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// It reached the end of the journey.
    Completed,
    /// An exit condition (or the engine) ended it early.
    Exited,
}

/// Where a run goes after the steps a worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// On to `step`, due at `due_at`, waiting for `wait` (the due time is then the timeout).
    Step {
        /// The step.
        step: String,
        /// When it is due; `None` only with `wait` (no timeout).
        due_at: Option<Timestamp>,
        /// What it waits for.
        wait: Option<Wait>,
    },
    /// The run ends, staying at its last step.
    End {
        /// Completed or exited.
        end: RunEnd,
        /// Why (an exit's reason).
        reason: Option<String>,
    },
}

/// One step a run passed, for its history.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The step's id (`3`, `4.then.1`).
    pub step: String,
    /// The how-manieth visit of the run to this step (1 for the first).
    pub occurrence: i64,
    /// When.
    pub at: Timestamp,
    /// What happened there, in the engine's words (`sent`, `waited`, `branch_then`, `capped`).
    pub outcome: String,
    /// Details, as JSON.
    pub detail: Option<Value>,
}

/// Everything one step of a worker changes, written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    /// Where the run goes.
    pub next: Next,
    /// The steps passed, for the history.
    pub history: Vec<StepRecord>,
    /// The messages to send (idempotent on their keys).
    pub messages: Vec<NewMessage>,
}

/// The columns a claim returns, in the order [`claimed_run`] reads them.
const CLAIM_COLUMNS: &str = "id, journey, version, customer_id, run_key, step, due_at, wait_event, wait_segment, \
     wait_keyed, woken_at, context, entered_at, lease_owner, lease_until, lease_seq";

pub(super) async fn start<DB: Dialect>(
    store: &Store<DB>,
    new: &NewRun<'_>,
    rules: &EntryRules,
    now: Timestamp,
) -> Result<Entered, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let entered = enter(&mut tx, new, rules, now).await?;
    tx.commit().await?;
    Ok(entered)
}

/// [`start`] for several runs in one transaction, decided one after the other in the order
/// given, as if each were entered alone: one commit for a chunk of customers a calendar
/// trigger enters instead of one each (the commits' disk flushes were most of the time of a
/// day's evaluation). On PostgreSQL the customers' locks are held until the commit, taken in
/// the order given; callers go by internal id, so two such batches cannot deadlock.
pub(super) async fn start_many<DB: Dialect>(
    store: &Store<DB>,
    runs: &[NewRun<'_>],
    rules: &EntryRules,
    now: Timestamp,
) -> Result<Vec<Entered>, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let mut entered = Vec::with_capacity(runs.len());
    for new in runs {
        entered.push(enter(&mut tx, new, rules, now).await?);
    }
    tx.commit().await?;
    Ok(entered)
}

/// The entry rules checked and the run inserted, in the caller's transaction.
async fn enter<DB: Dialect>(
    tx: &mut Tx<DB>,
    new: &NewRun<'_>,
    rules: &EntryRules,
    now: Timestamp,
) -> Result<Entered, StoreError> {
    // The customer's lock makes the checks below and the insert one step for concurrent
    // entries of the same customer (two journeys, two servers).
    let found = query(&format!("SELECT id FROM customers WHERE id = $1{}", DB::LOCK_ROW))
        .bind(new.customer)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Err(StoreError::Corrupt(format!("no customer with internal id {}", new.customer)));
    }
    if rules.once_per_key {
        let earlier =
            query("SELECT id FROM journey_runs WHERE journey = $1 AND customer_id = $2 AND run_key = $3 LIMIT 1")
                .bind(new.journey)
                .bind(new.customer)
                .bind(new.key)
                .fetch_optional(&mut *tx)
                .await?;
        if earlier.is_some() {
            return Ok(Entered::NotAgain);
        }
    }
    // With occurrence keys the checks below span every key of the journey (`CAST($3 AS TEXT)
    // IS NULL`): the key is not a conversation of its own.
    let key_filter = if rules.once_per_key { None } else { Some(new.key) };
    let active = query(
        "SELECT id FROM journey_runs WHERE journey = $1 AND customer_id = $2 \
         AND (CAST($3 AS TEXT) IS NULL OR run_key = $3) AND status = 'active' LIMIT 1",
    )
    .bind(new.journey)
    .bind(new.customer)
    .bind(key_filter)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = active {
        return Ok(Entered::AlreadyActive(RunId(row.try_get(0)?)));
    }
    let since = match rules.reentry {
        Reentry::Once => Some(i64::MIN),
        Reentry::Since(t) => Some(t.micros()),
        Reentry::Always => None,
    };
    if let Some(since) = since {
        let earlier = query(
            "SELECT id FROM journey_runs WHERE journey = $1 AND customer_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR run_key = $3) AND entered_at >= $4 LIMIT 1",
        )
        .bind(new.journey)
        .bind(new.customer)
        .bind(key_filter)
        .bind(since)
        .fetch_optional(&mut *tx)
        .await?;
        if earlier.is_some() {
            return Ok(Entered::NotAgain);
        }
    }
    if let Some(max) = rules.max_active {
        let active: i64 = query("SELECT COUNT(*) FROM journey_runs WHERE customer_id = $1 AND status = 'active'")
            .bind(new.customer)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if active >= i64::from(max) {
            return Ok(Entered::AtLimit);
        }
    }
    let held_out = new.arm.is_control();
    // A control run is recorded as it would have entered, but ended at once and never due: it
    // counts for re-entry like any run, sends nothing, and is followed for the goal.
    let (status, due_at, wait, ended_at, reason) = if held_out {
        let reason = if new.arm == RunArm::GlobalControl { "global holdout" } else { "holdout" };
        ("held_out", None, None, Some(now.micros()), Some(reason))
    } else {
        ("active", new.due_at.map(Timestamp::micros), new.wait.as_ref(), None, None)
    };
    let (wait_event, wait_segment, wait_keyed) = wait_columns(wait);
    let context = serde_json::to_string(new.context).map_err(|e| StoreError::Corrupt(format!("run context: {e}")))?;
    // The unique index is the last word: a conflict (impossible under the lock) inserts nothing.
    let id = query(
        "INSERT INTO journey_runs (journey, version, customer_id, run_key, status, step, due_at, wait_event, \
         wait_segment, wait_keyed, context, entered_at, updated_at, arm, ended_at, exit_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(new.journey)
    .bind(new.version)
    .bind(new.customer)
    .bind(new.key)
    .bind(status)
    .bind(new.step)
    .bind(due_at)
    .bind(wait_event)
    .bind(wait_segment)
    .bind(wait_keyed)
    .bind(context)
    .bind(now.micros())
    .bind(new.arm.as_str())
    .bind(ended_at)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Err(StoreError::Conflict(format!("customer {} has an active run of `{}`", new.customer, new.journey)));
    };
    let id = RunId(id.try_get(0)?);
    Ok(if held_out { Entered::HeldOut(id) } else { Entered::Started(id) })
}

pub(super) async fn claim_due<DB: Dialect>(
    store: &Store<DB>,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> Result<Vec<ClaimedRun>, StoreError> {
    // One statement: the rows picked are the rows updated, with SKIP LOCKED on PostgreSQL so
    // concurrent claimers take disjoint rows; the outer conditions repeat the inner ones
    // because a row picked from an older snapshot may have been claimed meanwhile.
    let sql = format!(
        "UPDATE journey_runs SET lease_owner = $1, lease_until = $2, lease_seq = lease_seq + 1 \
         WHERE id IN (SELECT r.id FROM journey_runs r WHERE r.status = 'active' AND r.due_at <= $3 \
         AND (r.lease_until IS NULL OR r.lease_until <= $3) \
         AND NOT EXISTS (SELECT 1 FROM journey_heads h WHERE h.name = r.journey AND h.paused) \
         ORDER BY r.due_at, r.id LIMIT $4{}) \
         AND status = 'active' AND due_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
         RETURNING {CLAIM_COLUMNS}",
        DB::SKIP_LOCKED
    );
    let rows = query(&sql)
        .bind(owner)
        .bind(lease_end(now, lease).micros())
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&store.writer)
        .await?;
    let mut runs = rows.iter().map(claimed_run).collect::<Result<Vec<_>, _>>()?;
    runs.sort_by_key(|r| (r.due_at, r.id));
    Ok(runs)
}

fn claimed_run<R: Row>(r: &R) -> Result<ClaimedRun, StoreError> {
    let wait_event: Option<String> = r.try_get("wait_event")?;
    let wait_segment: Option<String> = r.try_get("wait_segment")?;
    let wait = match (wait_event, wait_segment) {
        (Some(name), _) => Some(Wait::Event { name, keyed: r.try_get("wait_keyed")? }),
        (None, Some(name)) => Some(Wait::Segment { name }),
        (None, None) => None,
    };
    let context: String = r.try_get("context")?;
    Ok(ClaimedRun {
        id: RunId(r.try_get("id")?),
        journey: r.try_get("journey")?,
        version: r.try_get("version")?,
        customer: r.try_get("customer_id")?,
        key: r.try_get("run_key")?,
        step: r.try_get("step")?,
        due_at: opt_time(r.try_get("due_at")?),
        wait,
        woken_at: opt_time(r.try_get("woken_at")?),
        entered_at: Timestamp::from_micros(r.try_get("entered_at")?),
        context: parse_json(&context, "run context")?,
        lease: Lease {
            owner: r.try_get::<Option<String>, _>("lease_owner")?.unwrap_or_default(),
            seq: r.try_get("lease_seq")?,
            until: Timestamp::from_micros(r.try_get::<Option<i64>, _>("lease_until")?.unwrap_or_default()),
        },
    })
}

/// The stored form of a wait: `(wait_event, wait_segment, wait_keyed)`.
fn wait_columns(wait: Option<&Wait>) -> (Option<&str>, Option<&str>, bool) {
    match wait {
        Some(Wait::Event { name, keyed }) => (Some(name), None, *keyed),
        Some(Wait::Segment { name }) => (None, Some(name), false),
        None => (None, None, false),
    }
}

pub(super) async fn advance<DB: Dialect>(
    store: &Store<DB>,
    id: RunId,
    lease: &Lease,
    update: &RunUpdate,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    if !advance_in(&mut tx, id, lease, update, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// [`advance`] for several runs in one transaction: one commit for a batch of runs instead of
/// one each (the commits' flushes were most of the engine's time per step). Each is decided
/// alone: a run whose lease was lost writes nothing and is `false`, the others go on.
pub(super) async fn advance_many<DB: Dialect>(
    store: &Store<DB>,
    runs: &[(RunId, &Lease, &RunUpdate)],
    now: Timestamp,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let mut done = Vec::with_capacity(runs.len());
    for (id, lease, update) in runs {
        done.push(advance_in(&mut tx, *id, lease, update, now).await?);
    }
    tx.commit().await?;
    Ok(done)
}

/// One run's move, history and messages in the caller's transaction; `false`, with nothing
/// written, when the lease no longer holds the run or it is no longer active.
async fn advance_in<DB: Dialect>(
    tx: &mut Tx<DB>,
    id: RunId,
    lease: &Lease,
    update: &RunUpdate,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let (status, step, due_at, wait, ended_at, reason) = match &update.next {
        Next::Step { step, due_at, wait } => ("active", Some(step.as_str()), *due_at, wait.as_ref(), None, None),
        Next::End { end, reason } => {
            let status = match end {
                RunEnd::Completed => "completed",
                RunEnd::Exited => "exited",
            };
            (status, None, None, None, Some(now.micros()), reason.as_deref())
        }
    };
    let (wait_event, wait_segment, wait_keyed) = wait_columns(wait);
    let row = query(
        "UPDATE journey_runs SET status = $4, step = COALESCE($5, step), due_at = $6, wait_event = $7, \
         wait_segment = $8, wait_keyed = $9, woken_at = NULL, ended_at = $10, exit_reason = $11, updated_at = $12, \
         lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND status = 'active' AND lease_owner = $2 AND lease_seq = $3 \
         RETURNING journey, version, customer_id",
    )
    .bind(id.0)
    .bind(lease.owner.as_str())
    .bind(lease.seq)
    .bind(status)
    .bind(step)
    .bind(due_at.map(Timestamp::micros))
    .bind(wait_event)
    .bind(wait_segment)
    .bind(wait_keyed)
    .bind(ended_at)
    .bind(reason)
    .bind(now.micros())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        // Lost the lease, or the run was exited meanwhile: nothing of this step is written.
        return Ok(false);
    };
    let run = outbox::RunOf {
        id,
        journey: row.try_get("journey")?,
        version: row.try_get("version")?,
        customer: row.try_get("customer_id")?,
    };
    if !update.history.is_empty() {
        let mut b = QueryBuilder::new("INSERT INTO journey_steps (run_id, step, occurrence, time, outcome, detail) ");
        let mut details = Vec::with_capacity(update.history.len());
        for h in &update.history {
            details.push(
                h.detail
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("step detail: {e}")))?,
            );
        }
        b.push_values(update.history.iter().zip(details), |mut row, (h, detail)| {
            row.push_bind(id.0)
                .push_bind(h.step.as_str())
                .push_bind(h.occurrence)
                .push_bind(h.at.micros())
                .push_bind(h.outcome.as_str())
                .push_bind(detail);
        });
        b.build().execute(&mut *tx).await?;
    }
    for message in &update.messages {
        outbox::insert(tx, &run, message, now).await?;
    }
    Ok(true)
}

pub(super) async fn wake<DB: Dialect>(
    store: &Store<DB>,
    customer: i64,
    signal: &Signal<'_>,
    now: Timestamp,
) -> Result<Vec<RunId>, StoreError> {
    let set = "UPDATE journey_runs SET woken_at = $2, due_at = $2, wait_event = NULL, wait_segment = NULL, \
               wait_keyed = FALSE, updated_at = $2 WHERE customer_id = $1 AND status = 'active'";
    let rows = match signal {
        Signal::Event { name } => {
            query(&format!("{set} AND wait_event = $3 AND NOT wait_keyed RETURNING id"))
                .bind(customer)
                .bind(now.micros())
                .bind(*name)
                .fetch_all(&store.writer)
                .await?
        }
        Signal::KeyedEvent { name, journey, key } => {
            query(&format!(
                "{set} AND journey = $3 AND wait_event = $4 AND wait_keyed \
             AND (CAST($5 AS TEXT) IS NULL OR run_key = $5) RETURNING id"
            ))
            .bind(customer)
            .bind(now.micros())
            .bind(*journey)
            .bind(*name)
            .bind(*key)
            .fetch_all(&store.writer)
            .await?
        }
        Signal::SegmentEntry { name } => {
            query(&format!("{set} AND wait_segment = $3 RETURNING id"))
                .bind(customer)
                .bind(now.micros())
                .bind(*name)
                .fetch_all(&store.writer)
                .await?
        }
    };
    run_ids(&rows)
}

fn run_ids<R: Row>(rows: &[R]) -> Result<Vec<RunId>, StoreError> {
    let mut ids = rows.iter().map(|r| Ok(RunId(r.try_get(0)?))).collect::<Result<Vec<_>, StoreError>>()?;
    ids.sort_unstable();
    Ok(ids)
}

pub(super) async fn exit<DB: Dialect>(
    store: &Store<DB>,
    customer: i64,
    journey: &str,
    key: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<Vec<RunId>, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    // The lease is dropped with the run: its holder's advance then finds it ended and writes
    // nothing (an exit wins over a step in progress).
    let rows = query(
        "UPDATE journey_runs SET status = 'exited', ended_at = $4, exit_reason = $5, due_at = NULL, \
         wait_event = NULL, wait_segment = NULL, wait_keyed = FALSE, updated_at = $4, lease_owner = NULL, \
         lease_until = NULL \
         WHERE customer_id = $1 AND journey = $2 AND status = 'active' AND (CAST($3 AS TEXT) IS NULL OR run_key = $3) \
         RETURNING id",
    )
    .bind(customer)
    .bind(journey)
    .bind(key)
    .bind(now.micros())
    .bind(reason)
    .fetch_all(&mut tx)
    .await?;
    let ids = run_ids(&rows)?;
    if !ids.is_empty() {
        let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let mut q = QueryBuilder::new("UPDATE journey_messages SET status = 'cancelled', last_response = ");
        q.push_bind(format!("cancelled: the run exited ({reason})"))
            .push(", updated_at = ")
            .push_bind(now.micros())
            .push(" WHERE status IN ('pending', 'retry') AND ");
        DB::push_id_filter(&mut q, "run_id", &raw);
        q.build().execute(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// Inside an erasure's transaction: the customer's active runs exit, what was not being sent
/// yet is never sent, and what named them is redacted — run contexts, step details, message
/// recipients, bodies and server answers (which may quote the address). Message-IDs name the
/// internal id only and stay, as do the counts of what happened.
pub(crate) async fn erase_customer<DB: Dialect>(tx: &mut Tx<DB>, customer: i64, now: i64) -> Result<(), StoreError> {
    query(
        "UPDATE journey_runs SET status = 'exited', ended_at = $2, exit_reason = 'the customer was erased', \
         due_at = NULL, wait_event = NULL, wait_segment = NULL, wait_keyed = FALSE, lease_owner = NULL, \
         lease_until = NULL, updated_at = $2 WHERE customer_id = $1 AND status = 'active'",
    )
    .bind(customer)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    query("UPDATE journey_runs SET context = '{}' WHERE customer_id = $1").bind(customer).execute(&mut *tx).await?;
    query(
        "UPDATE journey_steps SET detail = NULL WHERE run_id IN (SELECT id FROM journey_runs WHERE customer_id = $1)",
    )
    .bind(customer)
    .execute(&mut *tx)
    .await?;
    query(
        "UPDATE journey_messages SET \
         last_response = CASE WHEN status IN ('pending', 'retry') THEN 'cancelled: the customer was erased' END, \
         status = CASE WHEN status IN ('pending', 'retry') THEN 'cancelled' ELSE status END, \
         recipient = '', payload = $2, updated_at = $3 WHERE customer_id = $1",
    )
    .bind(customer)
    .bind(crate::webhook::ERASED_BODY)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
