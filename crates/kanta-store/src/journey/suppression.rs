//! The suppression list: addresses not to mail. A hard bounce or a complaint suppresses an
//! address at once, soft bounces after a configured number of them; an operator or an
//! unsubscribe can add one by hand. Addresses are kept and compared lowercased (trimmed), so
//! `Ann@Example.org` and `ann@example.org` are one entry.

use kanta_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::{opt_time, parse_enum, serialize_at, serialize_opt_at};
use crate::sql::{Row, query};
use crate::store::Store;

/// What a mail server reported about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    /// A permanent failure (no such mailbox).
    Hard,
    /// A temporary failure (mailbox full).
    Soft,
    /// The recipient marked a message as spam.
    Complaint,
}

/// Why an address is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// A hard bounce.
    HardBounce,
    /// A complaint.
    Complaint,
    /// Soft bounces (counting, or past the threshold).
    SoftBounce,
    /// Added by an operator.
    Manual,
    /// The recipient unsubscribed.
    Unsubscribed,
}

impl SuppressionReason {
    const ALL: [(SuppressionReason, &'static str); 5] = [
        (SuppressionReason::HardBounce, "hard_bounce"),
        (SuppressionReason::Complaint, "complaint"),
        (SuppressionReason::SoftBounce, "soft_bounce"),
        (SuppressionReason::Manual, "manual"),
        (SuppressionReason::Unsubscribed, "unsubscribed"),
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        SuppressionReason::ALL.iter().find(|(r, _)| *r == self).map_or("", |(_, name)| name)
    }
}

/// An address on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Suppression {
    /// The address, lowercased.
    pub address: String,
    /// Why it is (or is being counted for) the list.
    pub reason: SuppressionReason,
    /// Soft bounces recorded.
    pub soft_bounces: i64,
    /// Whether it is suppressed (false: soft bounces are being counted).
    pub suppressed: bool,
    /// When it was suppressed, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_opt_at")]
    pub suppressed_at: Option<Timestamp>,
    /// Last change, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub updated_at: Timestamp,
}

/// The form addresses are kept and compared in.
fn normalize(address: &str) -> String {
    address.trim().to_lowercase()
}

pub(super) async fn record_bounce<DB: Dialect>(
    store: &Store<DB>,
    address: &str,
    bounce: Bounce,
    soft_threshold: u32,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let threshold = i64::from(soft_threshold.max(1));
    let (reason, soft, at_once) = match bounce {
        Bounce::Hard => (SuppressionReason::HardBounce, 0_i64, true),
        Bounce::Complaint => (SuppressionReason::Complaint, 0, true),
        Bounce::Soft => (SuppressionReason::SoftBounce, 1, false),
    };
    let suppressed_now = at_once || soft >= threshold;
    // One statement, so concurrent bounces of one address all count. An address suppressed
    // already keeps its first reason and time.
    let row = query(
        "INSERT INTO suppressions (address, reason, soft_bounces, suppressed, suppressed_at, updated_at) \
         VALUES ($1, $2, $3, $4, CASE WHEN $4 THEN $5 END, $5) \
         ON CONFLICT (address) DO UPDATE SET \
         soft_bounces = suppressions.soft_bounces + excluded.soft_bounces, \
         suppressed = suppressions.suppressed OR $6 OR suppressions.soft_bounces + excluded.soft_bounces >= $7, \
         reason = CASE WHEN suppressions.suppressed THEN suppressions.reason ELSE excluded.reason END, \
         suppressed_at = CASE WHEN suppressions.suppressed THEN suppressions.suppressed_at \
         WHEN $6 OR suppressions.soft_bounces + excluded.soft_bounces >= $7 THEN excluded.updated_at END, \
         updated_at = excluded.updated_at \
         RETURNING suppressed",
    )
    .bind(normalize(address))
    .bind(reason.as_str())
    .bind(soft)
    .bind(suppressed_now)
    .bind(now.micros())
    .bind(at_once)
    .bind(threshold)
    .fetch_one(&store.writer)
    .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn suppress<DB: Dialect>(
    store: &Store<DB>,
    address: &str,
    reason: SuppressionReason,
    now: Timestamp,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO suppressions (address, reason, soft_bounces, suppressed, suppressed_at, updated_at) \
         VALUES ($1, $2, 0, TRUE, $3, $3) \
         ON CONFLICT (address) DO UPDATE SET reason = CASE WHEN suppressions.suppressed THEN suppressions.reason \
         ELSE excluded.reason END, suppressed_at = COALESCE(suppressions.suppressed_at, excluded.suppressed_at), \
         suppressed = TRUE, updated_at = excluded.updated_at",
    )
    .bind(normalize(address))
    .bind(reason.as_str())
    .bind(now.micros())
    .execute(&store.writer)
    .await?;
    Ok(())
}

pub(super) async fn unsuppress<DB: Dialect>(store: &Store<DB>, address: &str) -> Result<bool, StoreError> {
    let done =
        query("DELETE FROM suppressions WHERE address = $1").bind(normalize(address)).execute(&store.writer).await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn is_suppressed<DB: Dialect>(store: &Store<DB>, address: &str) -> Result<bool, StoreError> {
    let row = query("SELECT suppressed FROM suppressions WHERE address = $1")
        .bind(normalize(address))
        .fetch_optional(&store.reader)
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => false,
    })
}

pub(super) async fn list<DB: Dialect>(store: &Store<DB>) -> Result<Vec<Suppression>, StoreError> {
    let rows = query(
        "SELECT address, reason, soft_bounces, suppressed, suppressed_at, updated_at FROM suppressions ORDER BY address",
    )
    .fetch_all(&store.reader)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Suppression {
                address: r.try_get("address")?,
                reason: parse_enum(&r.try_get::<String, _>("reason")?, &SuppressionReason::ALL, "suppression reason")?,
                soft_bounces: r.try_get("soft_bounces")?,
                suppressed: r.try_get("suppressed")?,
                suppressed_at: opt_time(r.try_get("suppressed_at")?),
                updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
            })
        })
        .collect()
}
