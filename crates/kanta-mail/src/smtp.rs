//! Sending over SMTP: [`Mailer`] (a connection pool of its own, [`crate::pool`], a concurrency
//! limit and a [`RateLimiter`]) and what became of each message, [`Outcome`].
//!
//! **What lettre lets us tell apart** (lettre 0.11's `smtp::Error`, for the SMTP dialogue
//! lettre speaks over the connections kanta opens):
//! - a reply with a code: `4xx` is [`Outcome::Temporary`], `5xx` [`Outcome::Permanent`] —
//!   to any command, `RCPT TO` (a rejected recipient) or the end of `DATA` (content refused)
//!   alike; either way the server has not taken the message;
//! - no connection (refused, unreachable, no such host, no greeting within the timeout) and a
//!   TLS handshake or certificate failure: nothing of the message was sent, so
//!   [`Outcome::Temporary`] with no code (the pool opens the socket and the TLS session itself,
//!   so it knows);
//! - lettre refusing before it sends (`is_client`: a non-ASCII recipient and a server without
//!   SMTPUTF8, no AUTH mechanism in common, STARTTLS required and not offered):
//!   [`Outcome::Permanent`] with no code;
//! - everything else while the message is sent — an IO error on an open connection, no answer
//!   within the timeout, a reply that does not parse — can happen after the server may have
//!   taken it: [`Outcome::Unknown`]. The engine records such a message as in doubt rather than
//!   sending it twice or dropping it.
//!
//! A permanent AUTH failure (535) is also `Permanent`, for every message, until the settings
//! are fixed: [`Mailer::check`] opens a connection (and AUTH) so start-up can catch that.
//!
//! A failed command aborts its connection (lettre), and the next message gets another one, so
//! a rejected recipient never fails the rest of a batch.

use std::sync::Arc;

use lettre::Message;
use tokio::sync::Semaphore;

use crate::pool::{OpenError, Pool};
use crate::rate::RateLimiter;
use crate::settings::EmailConfig;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server took it; its reply (`250 …`, often with its queue id).
    Sent {
        /// The reply's code and text.
        response: String,
    },
    /// Refused for good: don't retry.
    Permanent {
        /// The server's reply code, if the server answered.
        code: Option<u16>,
        /// The server's text, or lettre's reason.
        text: String,
    },
    /// Refused for now (4xx) or not reached: retry later.
    Temporary {
        /// The server's reply code, if the server answered.
        code: Option<u16>,
        /// The server's text, or why it was not reached.
        text: String,
    },
    /// The connection failed where the server may have taken the message: in doubt.
    Unknown {
        /// What failed.
        error: String,
    },
}

/// Why a [`Mailer`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up SMTP to {server}: {source}")]
pub struct MailerError {
    server: String,
    source: crate::pool::SetupError,
}

/// Sends messages to the one configured SMTP server. Cheap to clone; clones share the pool,
/// the concurrency limit and the rate.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
    rate: Arc<RateLimiter>,
}

struct Inner {
    pool: Pool,
    timeout: std::time::Duration,
    permits: Semaphore,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.inner.server).finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for the checked settings. Connects lazily, on the first send.
    pub fn new(config: &EmailConfig) -> Result<Mailer, MailerError> {
        let server = format!("{}:{}", config.server.host, config.server.port);
        let pool = Pool::new(config).map_err(|source| MailerError { server: server.clone(), source })?;
        Ok(Mailer {
            inner: Arc::new(Inner {
                pool,
                timeout: config.timeout,
                permits: Semaphore::new(config.concurrency as usize),
                server,
            }),
            rate: Arc::new(RateLimiter::new(config.rate_per_second)),
        })
    }

    /// The same mailer with another rate limiter (several mailers can share one).
    pub fn with_rate(mut self, rate: Arc<RateLimiter>) -> Mailer {
        self.rate = rate;
        self
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// SMTP connections opened so far: at most the concurrency while connections stay usable.
    pub fn connections_opened(&self) -> u64 {
        self.inner.pool.opened()
    }

    /// Opens a connection (with STARTTLS and AUTH as configured) and says `QUIT`: for start-up
    /// checks.
    pub async fn check(&self) -> Result<(), Outcome> {
        let mut connection = self.open_or_outcome(self.inner.pool.open()).await?;
        match tokio::time::timeout(self.inner.timeout, connection.quit()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Outcome::Temporary { code: None, text: "the server did not answer QUIT in time".into() }),
        }
    }

    /// Sends `message` to its envelope's recipients, waiting first for a free connection and
    /// for the rate. Never fails: every result is an [`Outcome`].
    ///
    /// Getting a connection and the exchange are each bounded by the configured timeout: a
    /// server that stops answering would otherwise hold the send, and its connection, for ever.
    /// No connection in time is [`Outcome::Temporary`] (nothing was sent); a send that runs
    /// out of time is [`Outcome::Unknown`] (the server may have taken the message and be slow
    /// to say so), and its connection is closed, never reused: its late reply would be read as
    /// the answer to the next message's command.
    pub async fn send(&self, message: &Message) -> Outcome {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(_permit) = self.inner.permits.acquire().await else {
            return Outcome::Temporary { code: None, text: "the mailer is shutting down".into() };
        };
        self.rate.acquire().await;
        let outcome = match self.open_or_outcome(self.inner.pool.get()).await {
            Err(outcome) => outcome,
            Ok(mut connection) => {
                let limit = self.inner.timeout;
                match tokio::time::timeout(limit, connection.send(message.envelope(), &message.formatted())).await {
                    Ok(Ok(response)) => {
                        self.inner.pool.put(connection);
                        Outcome::Sent {
                            response: format!(
                                "{} {}",
                                response.code(),
                                response.message().collect::<Vec<_>>().join(" ")
                            ),
                        }
                    }
                    // lettre aborted the connection on the error; it is dropped here.
                    Ok(Err(e)) => classify(&e),
                    Err(_) => Outcome::Unknown {
                        error: format!("no answer within {} s; the connection was closed", limit.as_secs()),
                    },
                }
            }
        };
        if !matches!(outcome, Outcome::Sent { .. }) {
            tracing::warn!(server = %self.inner.server, "smtp send failed: {outcome:?}");
        }
        outcome
    }

    /// A connection from `getting` within the timeout, or the [`Outcome`] of not having one.
    async fn open_or_outcome(
        &self,
        getting: impl std::future::Future<Output = Result<lettre::transport::smtp::client::AsyncSmtpConnection, OpenError>>,
    ) -> Result<lettre::transport::smtp::client::AsyncSmtpConnection, Outcome> {
        match tokio::time::timeout(self.inner.timeout, getting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(OpenError::Unreachable(text))) => Err(Outcome::Temporary { code: None, text }),
            Ok(Err(OpenError::Smtp(e))) => Err(classify(&e)),
            Err(_) => Err(Outcome::Temporary {
                code: None,
                text: format!("no SMTP connection within {} s", self.inner.timeout.as_secs()),
            }),
        }
    }
}

impl Outcome {
    /// Whether a permanent refusal says the mailbox or address is bad (a hard bounce at SMTP
    /// time): an enhanced status `5.1.x` at the start of the text (RFC 3463: bad destination
    /// mailbox, system or address), or, without one, the basic codes 550, 551 and 553 — the
    /// bounces ESPs treat as hard. A policy or content rejection (`5.7.x`, `554`) is not: the
    /// address may be fine.
    pub fn is_bad_mailbox(&self) -> bool {
        let Outcome::Permanent { code: Some(code), text } = self else { return false };
        match text.split_whitespace().next() {
            Some(enhanced) if enhanced.starts_with("5.") && enhanced.split('.').count() == 3 => {
                enhanced.starts_with("5.1.")
            }
            _ => matches!(code, 550 | 551 | 553),
        }
    }
}

/// The [`Outcome`] of a lettre error (see the module's documentation).
fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let code = e.status().map(u16::from);
    // The server's own words (lettre's source), else lettre's description.
    let text = std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string());
    if e.is_permanent() {
        Outcome::Permanent { code, text }
    } else if e.is_transient() {
        Outcome::Temporary { code, text }
    } else if e.is_tls() || e.to_string().starts_with("Connection error") {
        Outcome::Temporary { code: None, text: e.to_string() }
    } else if e.is_client() {
        Outcome::Permanent { code: None, text: e.to_string() }
    } else {
        Outcome::Unknown { error: e.to_string() }
    }
}

#[cfg(test)]
mod bounce_tests {
    use super::Outcome;

    fn refused(code: u16, text: &str) -> Outcome {
        Outcome::Permanent { code: Some(code), text: text.to_owned() }
    }

    #[test]
    fn bad_mailboxes_are_told_from_policy_rejections() {
        for (code, text) in [
            (550, "5.1.1 no such user"),
            (553, "5.1.3 bad address syntax"),
            (550, "mailbox unavailable"),
            (551, "try elsewhere"),
        ] {
            assert!(refused(code, text).is_bad_mailbox(), "{code} {text}");
        }
        for (code, text) in [
            (550, "5.7.1 rejected as spam"),
            (554, "5.7.1 policy"),
            (552, "5.2.2 mailbox full"),
            (554, "transaction failed"),
        ] {
            assert!(!refused(code, text).is_bad_mailbox(), "{code} {text}");
        }
        // Not a server's reply, or not permanent: never a bounce.
        assert!(!Outcome::Permanent { code: None, text: "550 5.1.1 from lettre".into() }.is_bad_mailbox());
        assert!(!Outcome::Temporary { code: Some(550), text: "5.1.1".into() }.is_bad_mailbox());
    }
}
