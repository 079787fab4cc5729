//! The journey engine end to end: a store (SQLite, and PostgreSQL when a server is there), a
//! `ManualClock`, and a real SMTP server (aiosmtpd) receiving what is sent.

// As in kanta-mail's suite, whose aiosmtpd helper is copied here: a failed setup step stops
// the test.
#![allow(clippy::unwrap_used)]

mod journeys;
mod simulate;
mod triggers;

use kanta_domain::Timestamp;
use kanta_store::record::{Record, parse_batch};
use serde_json::Value;

/// An RFC 3339 time.
fn t(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("an RFC 3339 time")
}

/// A JSON array of records, checked; every one must pass.
fn checked<T: Record + std::fmt::Debug>(json: &Value) -> Vec<T> {
    let text = json.to_string();
    let batch = parse_batch::<T>(text.as_bytes(), kanta_domain::TimeRange::ALL).expect("a JSON array");
    assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
    batch.valid.into_iter().map(|(_, r)| r).collect()
}
