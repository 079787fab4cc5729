//! The outbox of journey messages: one row per message a run decided to send, with its
//! idempotency key and Message-ID, moving through [`MessageStatus`].
//!
//! At most once: a worker claims rows (`pending`/`retry` → `sending`, with a lease) in a
//! committed statement before it opens the SMTP transaction, and records the outcome after.
//! A row still `sending` after its lease ran out belonged to a worker that died mid-send, so
//! nobody knows whether the server took it: [`mark_in_doubt`] moves it to `in_doubt`, which no
//! claim ever picks up; only an operator's [`resend`] puts it back to `pending`.

use std::fmt;
use std::time::Duration;

use kanta_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::run::RunId;
use crate::journey::{Lease, lease_end, parse_enum};
use crate::sql::{Row, Tx, query};
use crate::store::Store;

/// A message's id (its row in the outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An email over SMTP.
    Email,
    /// A webhook call.
    Webhook,
}

impl Channel {
    const ALL: [(Channel, &'static str); 2] = [(Channel::Email, "email"), (Channel::Webhook, "webhook")];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Channel, StoreError> {
        parse_enum(text, &Channel::ALL, "message channel")
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting until `not_before`.
    Pending,
    /// Claimed by a worker, which may be sending it now.
    Sending,
    /// The server accepted it.
    Sent,
    /// The server refused it for good.
    Failed,
    /// The server refused it for now; sent again after `not_before`.
    Retry,
    /// Found in `sending` after its worker's lease ran out: it may have gone. Never sent again
    /// unless an operator resends it.
    InDoubt,
    /// Not sent: the customer's frequency cap was reached.
    Capped,
    /// Not sent: no consent for the channel.
    NoConsent,
    /// Not sent: the address is suppressed.
    Suppressed,
    /// Rendered and recorded, not sent: the journey runs dry.
    DryRun,
    /// Not sent: its run exited (or the customer was erased) first.
    Cancelled,
}

impl MessageStatus {
    const ALL: [(MessageStatus, &'static str); 11] = [
        (MessageStatus::Pending, "pending"),
        (MessageStatus::Sending, "sending"),
        (MessageStatus::Sent, "sent"),
        (MessageStatus::Failed, "failed"),
        (MessageStatus::Retry, "retry"),
        (MessageStatus::InDoubt, "in_doubt"),
        (MessageStatus::Capped, "capped"),
        (MessageStatus::NoConsent, "no_consent"),
        (MessageStatus::Suppressed, "suppressed"),
        (MessageStatus::DryRun, "dry_run"),
        (MessageStatus::Cancelled, "cancelled"),
    ];

    /// The stored name (`in_doubt`).
    pub fn as_str(self) -> &'static str {
        MessageStatus::ALL.iter().find(|(s, _)| *s == self).map_or("", |(_, name)| name)
    }

    pub(super) fn parse(text: &str) -> Result<MessageStatus, StoreError> {
        parse_enum(text, &MessageStatus::ALL, "message status")
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message was not sent (recorded at enqueue time or by the worker at send time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The frequency cap.
    Capped,
    /// No consent.
    NoConsent,
    /// A suppressed address.
    Suppressed,
    /// A dry run.
    DryRun,
    /// Cancelled.
    Cancelled,
}

impl Skip {
    /// The status the message ends in.
    pub fn status(self) -> MessageStatus {
        match self {
            Skip::Capped => MessageStatus::Capped,
            Skip::NoConsent => MessageStatus::NoConsent,
            Skip::Suppressed => MessageStatus::Suppressed,
            Skip::DryRun => MessageStatus::DryRun,
            Skip::Cancelled => MessageStatus::Cancelled,
        }
    }
}

/// A message a run sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The step sending it.
    pub step: String,
    /// The run's how-manieth visit to that step (1 for the first).
    pub occurrence: i64,
    /// Email or webhook.
    pub channel: Channel,
    /// Transactional messages do not count against frequency caps.
    pub transactional: bool,
    /// The address (or URL).
    pub recipient: String,
    /// What is sent, as JSON text (rendered subject, HTML and text; a webhook's body), kept and
    /// sent byte for byte.
    pub payload: String,
    /// The Message-ID (unique), formed from [`idempotency_key`].
    pub message_id: String,
    /// Not before this time (quiet hours, send windows).
    pub not_before: Timestamp,
    /// Recorded as not sent, with this reason, instead of queued (a dry run, a guardrail the
    /// engine applied already).
    pub skip: Option<Skip>,
}

/// The key that makes a message unique: journey, version, customer (internal id), run, step and
/// occurrence, joined by `/`. The run, step and occurrence alone already decide it; the rest
/// make it readable in a Message-ID. Enqueueing the same key twice enqueues one message.
pub fn idempotency_key(journey: &str, version: i64, customer: i64, run: RunId, step: &str, occurrence: i64) -> String {
    format!("{journey}/{version}/{customer}/{run}/{step}/{occurrence}")
}

/// A message handed to a worker by [`crate::JourneyStore::claim_messages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    /// The message.
    pub id: MessageId,
    /// Its Message-ID.
    pub message_id: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// The run that sent it.
    pub run: RunId,
    /// The journey.
    pub journey: String,
    /// The journey's version.
    pub version: i64,
    /// The step.
    pub step: String,
    /// The visit of the step.
    pub occurrence: i64,
    /// The customer (internal id).
    pub customer: i64,
    /// Email or webhook.
    pub channel: Channel,
    /// Whether it is exempt from caps.
    pub transactional: bool,
    /// The address (or URL).
    pub recipient: String,
    /// What to send (JSON text).
    pub payload: String,
    /// Claims so far, this one included.
    pub attempts: i64,
    /// When it was claimed (this claim).
    pub claimed_at: Timestamp,
    /// The worker's hold on it.
    pub lease: Lease,
}

/// What became of a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted it, with this answer.
    Sent {
        /// The server's answer (`250 2.0.0 Ok: queued as …`).
        response: String,
    },
    /// The server refused it for good.
    Failed {
        /// The server's answer.
        response: String,
    },
    /// A temporary refusal: try again from `not_before`.
    Retry {
        /// The server's answer.
        response: String,
        /// The backoff's end.
        not_before: Timestamp,
    },
    /// Not sent, for a reason found at send time.
    Skipped {
        /// Why.
        skip: Skip,
        /// Details.
        detail: Option<String>,
    },
    /// Not sent yet (quiet hours): back to `pending` until `not_before`.
    Deferred {
        /// When it may go.
        not_before: Timestamp,
    },
}

/// The run a message belongs to, as the insert needs it.
pub(super) struct RunOf {
    pub(super) id: RunId,
    pub(super) journey: String,
    pub(super) version: i64,
    pub(super) customer: i64,
}

/// Insert a message of `run` (nothing when its key or Message-ID exists).
pub(super) async fn insert<DB: Dialect>(
    tx: &mut Tx<DB>,
    run: &RunOf,
    m: &NewMessage,
    now: Timestamp,
) -> Result<Option<MessageId>, StoreError> {
    let key = idempotency_key(&run.journey, run.version, run.customer, run.id, &m.step, m.occurrence);
    let status = m.skip.map_or(MessageStatus::Pending, Skip::status);
    let row = query(
        "INSERT INTO journey_messages (idempotency_key, message_id, run_id, journey, version, step, occurrence, \
         customer_id, channel, transactional, recipient, payload, status, not_before, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(m.message_id.as_str())
    .bind(run.id.0)
    .bind(run.journey.as_str())
    .bind(run.version)
    .bind(m.step.as_str())
    .bind(m.occurrence)
    .bind(run.customer)
    .bind(m.channel.as_str())
    .bind(m.transactional)
    .bind(m.recipient.as_str())
    .bind(m.payload.as_str())
    .bind(status.as_str())
    .bind(m.not_before.micros())
    .bind(now.micros())
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| Ok(MessageId(r.try_get(0)?))).transpose()
}

pub(super) async fn enqueue<DB: Dialect>(
    store: &Store<DB>,
    run: RunId,
    message: &NewMessage,
    now: Timestamp,
) -> Result<Option<MessageId>, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let row = query("SELECT journey, version, customer_id FROM journey_runs WHERE id = $1")
        .bind(run.0)
        .fetch_optional(&mut tx)
        .await?;
    let Some(row) = row else { return Err(StoreError::Corrupt(format!("no journey run {run}"))) };
    let of = RunOf { id: run, journey: row.try_get(0)?, version: row.try_get(1)?, customer: row.try_get(2)? };
    let id = insert(&mut tx, &of, message, now).await?;
    tx.commit().await?;
    Ok(id)
}

const CLAIM_COLUMNS: &str = "id, message_id, idempotency_key, run_id, journey, version, step, occurrence, \
     customer_id, channel, transactional, recipient, payload, attempts, claimed_at, lease_owner, lease_until, lease_seq";

pub(super) async fn claim<DB: Dialect>(
    store: &Store<DB>,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    // As with runs: one statement, SKIP LOCKED on PostgreSQL, the outer condition repeated
    // for rows picked from an older snapshot.
    let sql = format!(
        "UPDATE journey_messages SET status = 'sending', lease_owner = $1, lease_until = $2, \
         lease_seq = lease_seq + 1, attempts = attempts + 1, claimed_at = $3, started_at = NULL, updated_at = $3 \
         WHERE id IN (SELECT m.id FROM journey_messages m WHERE m.status IN ('pending', 'retry') \
         AND m.not_before <= $3 \
         AND NOT EXISTS (SELECT 1 FROM journey_heads h WHERE h.name = m.journey AND h.paused) \
         ORDER BY m.not_before, m.id LIMIT $4{}) \
         AND status IN ('pending', 'retry') AND not_before <= $3 \
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
    let mut messages = rows
        .iter()
        .map(|r| {
            Ok(ClaimedMessage {
                id: MessageId(r.try_get("id")?),
                message_id: r.try_get("message_id")?,
                idempotency_key: r.try_get("idempotency_key")?,
                run: RunId(r.try_get("run_id")?),
                journey: r.try_get("journey")?,
                version: r.try_get("version")?,
                step: r.try_get("step")?,
                occurrence: r.try_get("occurrence")?,
                customer: r.try_get("customer_id")?,
                channel: Channel::parse(&r.try_get::<String, _>("channel")?)?,
                transactional: r.try_get("transactional")?,
                recipient: r.try_get("recipient")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                claimed_at: Timestamp::from_micros(r.try_get("claimed_at")?),
                lease: Lease {
                    owner: r.try_get("lease_owner")?,
                    seq: r.try_get("lease_seq")?,
                    until: Timestamp::from_micros(r.try_get("lease_until")?),
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    messages.sort_by_key(|m| m.id);
    Ok(messages)
}

pub(super) async fn complete<DB: Dialect>(
    store: &Store<DB>,
    done: &[(MessageId, &Lease, &Outcome)],
    now: Timestamp,
) -> Result<Vec<bool>, StoreError> {
    // One transaction for the batch: one commit (one fsync) instead of one per message.
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let mut recorded = Vec::with_capacity(done.len());
    for &(id, lease, outcome) in done {
        recorded.push(complete_one(&mut tx, id, lease, outcome, now).await?);
    }
    tx.commit().await?;
    Ok(recorded)
}

async fn complete_one<DB: Dialect>(
    tx: &mut Tx<DB>,
    id: MessageId,
    lease: &Lease,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // `uncount`: a skip or deferral sent nothing, so its claim is not an attempt.
    let (status, response, not_before, sent_at, uncount) = match outcome {
        Outcome::Sent { response } => (MessageStatus::Sent, Some(response.as_str()), None, Some(now.micros()), 0_i64),
        Outcome::Failed { response } => (MessageStatus::Failed, Some(response.as_str()), None, None, 0),
        Outcome::Retry { response, not_before } => {
            (MessageStatus::Retry, Some(response.as_str()), Some(not_before.micros()), None, 0)
        }
        Outcome::Skipped { skip, detail } => (skip.status(), detail.as_deref(), None, None, 1),
        Outcome::Deferred { not_before } => (MessageStatus::Pending, None, Some(not_before.micros()), None, 1),
    };
    let done = query(
        "UPDATE journey_messages SET status = $4, last_response = COALESCE($5, last_response), \
         not_before = COALESCE($6, not_before), sent_at = $7, attempts = attempts - $8, lease_owner = NULL, \
         lease_until = NULL, updated_at = $9 \
         WHERE id = $1 AND lease_owner = $2 AND lease_seq = $3 AND status IN ('sending', 'in_doubt')",
    )
    .bind(id.0)
    .bind(lease.owner.as_str())
    .bind(lease.seq)
    .bind(status.as_str())
    .bind(response)
    .bind(not_before)
    .bind(sent_at)
    .bind(uncount)
    .bind(now.micros())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn mark_in_doubt<DB: Dialect>(store: &Store<DB>, now: Timestamp) -> Result<u64, StoreError> {
    // Claimed but never started: nothing can have gone, so the row is due again (its claim
    // was not an attempt). Clearing the owner makes a late start by the old worker fail.
    query(
        "UPDATE journey_messages SET status = 'pending', attempts = attempts - 1, lease_owner = NULL, \
         lease_until = NULL, updated_at = $1 WHERE status = 'sending' AND started_at IS NULL AND lease_until <= $1",
    )
    .bind(now.micros())
    .execute(&store.writer)
    .await?;
    // The lease owner and counter stay: the worker, if it is alive after all, may still record
    // what the server said.
    let done = query(
        "UPDATE journey_messages SET status = 'in_doubt', updated_at = $1 \
         WHERE status = 'sending' AND started_at IS NOT NULL AND lease_until <= $1",
    )
    .bind(now.micros())
    .execute(&store.writer)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn start<DB: Dialect>(
    store: &Store<DB>,
    sends: &[(MessageId, &Lease)],
    now: Timestamp,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let mut started = Vec::with_capacity(sends.len());
    for &(id, lease) in sends {
        // Only while the lease holds and the row is still `sending`: a row released after the
        // lease ran out (or claimed by another worker) must not be sent by this one.
        let done = query(
            "UPDATE journey_messages SET started_at = $4, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND lease_seq = $3 AND status = 'sending' AND lease_until > $4",
        )
        .bind(id.0)
        .bind(lease.owner.as_str())
        .bind(lease.seq)
        .bind(now.micros())
        .execute(&mut tx)
        .await?;
        started.push(done.rows_affected() == 1);
    }
    tx.commit().await?;
    Ok(started)
}

pub(super) async fn resend<DB: Dialect>(
    store: &Store<DB>,
    id: MessageId,
    token: Option<i64>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    // Clearing the owner also makes the old worker's late answer fail its lease check.
    let row = query(
        "UPDATE journey_messages SET status = 'pending', not_before = $2, lease_owner = NULL, lease_until = NULL, \
         started_at = NULL, updated_at = $2 WHERE id = $1 AND status = 'in_doubt' RETURNING customer_id",
    )
    .bind(id.0)
    .bind(now.micros())
    .fetch_optional(&mut tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let customer: i64 = row.try_get(0)?;
    query(
        "INSERT INTO audit_log (time, token_id, action, customer_id, detail) \
         VALUES ($1, $2, 'journey_resend', $3, (SELECT external_id FROM customers WHERE id = $3))",
    )
    .bind(now.micros())
    .bind(token)
    .bind(customer)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// [`crate::JourneyStore::marketing_sent_since`].
pub(super) async fn marketing_sent_since<DB: Dialect>(
    store: &Store<DB>,
    customer: i64,
    since: Timestamp,
    excluding: Option<MessageId>,
) -> Result<u32, StoreError> {
    let mut conn = store.reader.acquire().await?;
    let claimed_at: Option<i64> = match excluding {
        Some(id) => query("SELECT claimed_at FROM journey_messages WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .flatten(),
        None => None,
    };
    let count: i64 = query(
        "SELECT COUNT(*) FROM journey_messages m WHERE m.customer_id = $1 AND NOT m.transactional \
         AND m.channel = 'email' AND m.id <> $3 AND ( \
         (m.status = 'sent' AND m.sent_at >= $2) \
         OR (m.status = 'in_doubt' AND m.claimed_at >= $2) \
         OR (m.status = 'sending' AND m.claimed_at >= $2 AND (CAST($4 AS BIGINT) IS NULL OR m.claimed_at < $4 \
         OR (m.claimed_at = $4 AND m.id < $3))))",
    )
    .bind(customer)
    .bind(since.micros())
    .bind(excluding.map_or(0, |id| id.0))
    .bind(claimed_at)
    .fetch_one(&mut conn)
    .await?
    .try_get(0)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}
