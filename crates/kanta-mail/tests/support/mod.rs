//! Test support: a real SMTP server (aiosmtpd) on loopback, and certificates for it.

pub mod aiosmtpd;
