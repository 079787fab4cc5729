//! The journey engine end to end: a store (SQLite, and PostgreSQL when a server is there), a
//! `ManualClock`, and a real SMTP server (aiosmtpd) receiving what is sent.

mod journeys;
mod support;
