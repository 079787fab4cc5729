//! The journey engine end to end: a store (SQLite, and PostgreSQL when a server is there), a
//! `ManualClock`, and a real SMTP server (aiosmtpd) receiving what is sent.

// As in kanta-mail's suite, whose aiosmtpd helper is copied here: a failed setup step stops
// the test.
#![allow(clippy::unwrap_used)]

mod journeys;
mod simulate;
mod triggers;
