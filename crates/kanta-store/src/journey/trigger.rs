//! Calendar triggers (dates, predicted purchases, cron schedules): the customers a date trigger
//! may concern, scanned in chunks, and each journey's cursor, the instant its trigger was
//! evaluated through ([`TriggerStore`]).
//!
//! The store decides nothing about days: it narrows the scan by what SQL can say cheaply (the
//! customers' zones, the month and day of a text date, a range of instants) and the engine
//! applies `kanta_journey::dates`' rules to each candidate.
//!
//! **The cursor.** A worker claims a journey's window with a lease
//! ([`TriggerStore::claim_trigger_window`]), so a second server on the same database passes the
//! journey over instead of scanning the same customers; it moves the cursor only after every
//! customer of the window was entered ([`TriggerStore::finish_trigger_window`], conditioned on
//! still holding the lease and on the cursor being where the claim found it). A worker that
//! dies mid-window leaves the cursor where it was, and the window is evaluated again after the
//! lease: the runs' occurrence keys (`EntryRules::once_per_key`) make that harmless.

use std::time::Duration;

use kanta_domain::Timestamp;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::{lease_end, opt_time};
use crate::sql::{QueryBuilder, Row, query};
use crate::store::{Store, keyset_page};

/// Where a journey's calendar trigger stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerCursor {
    /// Every local midnight (or cron occurrence) up to this instant, inclusive, was handled.
    pub evaluated_to: Timestamp,
    /// Cron schedules: the last occurrence whose segment members were entered (or skipped as
    /// too late).
    pub last_occurrence: Option<Timestamp>,
}

/// Which customers' zones a scan covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zones<'a> {
    /// Customers whose `timezone` is one of these names (as stored).
    pub names: &'a [String],
    /// Also the customers without a zone (read in the journey's or the settings' default).
    pub unset: bool,
}

/// How a text date (`YYYY-MM-DD`, or an RFC 3339 text whose first ten characters are the date)
/// must look for its customer to be a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayMatch<'a> {
    /// Its month and day (`MM-DD`, characters 6 to 10) is one of these: yearly triggers.
    MonthDay(&'a [String]),
    /// Its date (`YYYY-MM-DD`, the first 10 characters) is one of these: one-time triggers.
    Date(&'a [String]),
}

/// The date a scan reads, with what narrows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateScan<'a> {
    /// The customer's `birthday`.
    Birthday(DayMatch<'a>),
    /// A customer attribute (`attributes.NAME`) read as text.
    Attribute {
        /// The attribute's name.
        name: &'a str,
        /// What its text must look like.
        matching: DayMatch<'a>,
    },
    /// The time of the customer's first purchase (completed, positive amount): every customer
    /// with one (the local day depends on the zone, which SQL does not know).
    FirstPurchase,
    /// The latest scoring run's `next_purchase_at`, in `[from, until)`.
    NextPurchase {
        /// The earliest instant included.
        from: Timestamp,
        /// The first instant not included.
        until: Timestamp,
    },
}

/// The value a candidate's trigger reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateValue {
    /// A text date, as stored (the engine parses it).
    Text(String),
    /// An instant (first purchase, predicted next purchase).
    At(Timestamp),
}

/// A customer a date trigger may concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateCandidate {
    /// Internal id (also the scan's position).
    pub customer: i64,
    /// External id, as [`crate::JourneyStore`] and the engine name customers.
    pub external_id: String,
    /// The customer's zone as stored.
    pub timezone: Option<String>,
    /// The date read.
    pub value: DateValue,
}

/// The calendar triggers' reads and cursors.
#[async_trait::async_trait]
pub trait TriggerStore: Send + Sync {
    /// The distinct zones of customers not erased, `None` for customers without one, sorted.
    async fn customer_zones(&self) -> Result<Vec<Option<String>>, StoreError>;

    /// Customers (not erased) in `zones` whose date of `scan` is set and matches its filter,
    /// after internal id `after`, by internal id, at most `limit`; with the position to go on
    /// from when there may be more.
    async fn date_candidates(
        &self,
        scan: DateScan<'_>,
        zones: Zones<'_>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<DateCandidate>, Option<i64>), StoreError>;

    /// A journey's cursor, if its trigger was ever evaluated.
    async fn trigger_cursor(&self, journey: &str) -> Result<Option<TriggerCursor>, StoreError>;

    /// Start a journey's cursor at `at` unless it has one; returns whether this call did.
    async fn start_trigger_cursor(&self, journey: &str, at: Timestamp) -> Result<bool, StoreError>;

    /// Claim the window after a journey's cursor for `lease`: the cursor when this worker now
    /// holds it, `None` when another worker's lease runs (or the journey has no cursor).
    async fn claim_trigger_window(
        &self,
        journey: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<TriggerCursor>, StoreError>;

    /// Move a claimed cursor from `from` (as the claim returned it) to `to` and release the
    /// lease; `to == from` only releases it. Nothing is written and `false` is returned when
    /// `owner` no longer holds the lease or the cursor moved meanwhile.
    async fn finish_trigger_window(
        &self,
        journey: &str,
        owner: &str,
        from: &TriggerCursor,
        to: &TriggerCursor,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> TriggerStore for Store<DB> {
    async fn customer_zones(&self) -> Result<Vec<Option<String>>, StoreError> {
        let rows = query::<DB>("SELECT DISTINCT timezone FROM customers WHERE erased_at IS NULL ORDER BY timezone")
            .fetch_all(&self.reader)
            .await?;
        let mut zones = rows.iter().map(|r| r.try_get::<Option<String>, _>(0)).collect::<Result<Vec<_>, _>>()?;
        // NULL sorts first on SQLite and last on PostgreSQL: one order for both.
        zones.sort();
        Ok(zones)
    }

    async fn date_candidates(
        &self,
        scan: DateScan<'_>,
        zones: Zones<'_>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<DateCandidate>, Option<i64>), StoreError> {
        let rows = candidates(self, scan, zones, after, limit).await?;
        keyset_page(&rows, limit, |r| {
            let value = match scan {
                DateScan::Birthday(_) | DateScan::Attribute { .. } => DateValue::Text(r.try_get("v")?),
                DateScan::FirstPurchase | DateScan::NextPurchase { .. } => {
                    DateValue::At(Timestamp::from_micros(r.try_get("v")?))
                }
            };
            Ok(DateCandidate {
                customer: r.try_get("id")?,
                external_id: r.try_get("external_id")?,
                timezone: r.try_get("timezone")?,
                value,
            })
        })
    }

    async fn trigger_cursor(&self, journey: &str) -> Result<Option<TriggerCursor>, StoreError> {
        let row = query::<DB>("SELECT evaluated_to, last_occurrence FROM journey_trigger_cursors WHERE journey = $1")
            .bind(journey)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(cursor).transpose()
    }

    async fn start_trigger_cursor(&self, journey: &str, at: Timestamp) -> Result<bool, StoreError> {
        let done = query::<DB>(
            "INSERT INTO journey_trigger_cursors (journey, evaluated_to, updated_at) VALUES ($1, $2, $2) \
             ON CONFLICT (journey) DO NOTHING",
        )
        .bind(journey)
        .bind(at.micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_trigger_window(
        &self,
        journey: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<TriggerCursor>, StoreError> {
        // One statement: of two claimers, the second finds the lease taken.
        let row = query::<DB>(
            "UPDATE journey_trigger_cursors SET lease_owner = $2, lease_until = $3, updated_at = $4 \
             WHERE journey = $1 AND (lease_until IS NULL OR lease_until <= $4) \
             RETURNING evaluated_to, last_occurrence",
        )
        .bind(journey)
        .bind(owner)
        .bind(lease_end(now, lease).micros())
        .bind(now.micros())
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref().map(cursor).transpose()
    }

    async fn finish_trigger_window(
        &self,
        journey: &str,
        owner: &str,
        from: &TriggerCursor,
        to: &TriggerCursor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = query::<DB>(
            "UPDATE journey_trigger_cursors SET evaluated_to = $4, last_occurrence = $5, lease_owner = NULL, \
             lease_until = NULL, updated_at = $6 \
             WHERE journey = $1 AND lease_owner = $2 AND evaluated_to = $3",
        )
        .bind(journey)
        .bind(owner)
        .bind(from.evaluated_to.micros())
        .bind(to.evaluated_to.micros())
        .bind(to.last_occurrence.map(Timestamp::micros))
        .bind(now.micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn cursor<R: Row>(r: &R) -> Result<TriggerCursor, StoreError> {
    Ok(TriggerCursor {
        evaluated_to: Timestamp::from_micros(r.try_get("evaluated_to")?),
        last_occurrence: opt_time(r.try_get("last_occurrence")?),
    })
}

/// One page of a scan, `limit + 1` rows (the extra one tells there is more), as `id,
/// external_id, timezone, v`.
async fn candidates<DB: Dialect>(
    store: &Store<DB>,
    scan: DateScan<'_>,
    zones: Zones<'_>,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<DB::Row>, StoreError> {
    // The value is computed once in the inner query and filtered outside, so an attribute's
    // expression (and its bound key) appears once.
    let mut q =
        QueryBuilder::<DB>::new("SELECT id, external_id, timezone, v FROM (SELECT c.id, c.external_id, c.timezone, ");
    match scan {
        DateScan::Birthday(_) => {
            q.push("c.birthday AS v FROM customers c");
        }
        DateScan::Attribute { name, .. } => {
            DB::push_attribute_text(&mut q, name);
            q.push(" AS v FROM customers c");
        }
        DateScan::FirstPurchase => {
            q.push(format!(
                "(SELECT MIN(o.time) FROM orders o WHERE o.customer_id = c.id AND {}) AS v FROM customers c",
                kanta_domain::purchase::PURCHASE_SQL
            ));
        }
        DateScan::NextPurchase { .. } => {
            // Driven by the scores (one row per scored customer, by customer id), not by a
            // lookup per customer.
            q.push("s.next_purchase_at AS v FROM scores s JOIN customers c ON c.id = s.customer_id");
        }
    }
    q.push(" WHERE c.erased_at IS NULL AND c.id > ").push_bind(after.unwrap_or(0));
    // On the zone as an expression, not the column: an index on `timezone` would hand the rows
    // over out of id order, and every page would sort the whole zone set again. Stored zones
    // are never empty (`TimeZoneName` checks), so '' stands for "no zone".
    q.push(" AND COALESCE(c.timezone, '') IN (");
    {
        let mut list = q.separated(", ");
        for name in zones.names {
            list.push_bind(name.clone());
        }
        // Never an empty list, which is not SQL: '' matches only customers without a zone, and
        // a space no one (zone names have none).
        list.push_bind(if zones.unset { "" } else { " " }.to_owned());
    }
    q.push(")) x WHERE v IS NOT NULL");
    let (start, days) = match scan {
        DateScan::Birthday(m) | DateScan::Attribute { matching: m, .. } => match m {
            DayMatch::MonthDay(days) => (6, days),
            DayMatch::Date(days) => (1, days),
        },
        DateScan::FirstPurchase => (0, &[][..]),
        DateScan::NextPurchase { from, until } => {
            q.push(" AND v >= ").push_bind(from.micros()).push(" AND v < ").push_bind(until.micros());
            (0, &[][..])
        }
    };
    if start > 0 {
        if days.is_empty() {
            q.push(" AND FALSE");
        } else {
            let len = if start == 6 { 5 } else { 10 };
            q.push(format!(" AND substr(v, {start}, {len}) IN ("));
            let mut list = q.separated(", ");
            for day in days {
                list.push_bind(day.clone());
            }
            q.push(")");
        }
    }
    q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit) + 1);
    Ok(q.build().fetch_all(&store.reader).await?)
}
