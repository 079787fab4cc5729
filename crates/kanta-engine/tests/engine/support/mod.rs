//! Test support: a real SMTP server (aiosmtpd) on loopback.

#[allow(dead_code, reason = "shared with kanta-mail's copy; the certificates are for its TLS tests")]
pub mod aiosmtpd;
