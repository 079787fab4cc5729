//! Delivering the outbox: claim due messages (they become `sending`, committed), check the
//! guardrails as they are *now* (consent, suppression, the cap count, quiet hours), mark the
//! send started (committed) just before its SMTP transaction, send, and record the outcome.
//!
//! An outcome that leaves unknown whether the server took the message is not recorded: the row
//! stays `sending`, its lease runs out and the next [`Engine::deliver`] marks it `in_doubt`,
//! which is never claimed again (at most once; an operator may resend). A claimed message whose
//! send never started (the worker died first) is due again after the lease instead, so a crash
//! leaves at most `concurrency` messages in doubt.

use kanta_domain::Timestamp;
use kanta_journey::{Decision, FrequencyCap, MessageKind, Recipient, SkipReason};
use kanta_mail::{Kind, MessageKey, Outgoing};
use kanta_store::journey::{Channel, ClaimedMessage, Outcome, Skip, SuppressionReason};

use crate::advance::EmailPayload;
use crate::{Engine, EngineError};

/// What one [`Engine::deliver_counted`] did with the messages it claimed, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Messages claimed.
    pub claimed: usize,
    /// Taken by the SMTP server (or the webhook receiver).
    pub sent: usize,
    /// Skipped at send time: no consent, suppressed, capped, or the customer is gone.
    pub skipped: usize,
    /// Deferred by quiet hours.
    pub deferred: usize,
    /// Refused for now, or email not configured: due again after a backoff.
    pub retried: usize,
    /// Refused for good.
    pub failed: usize,
    /// Left in `sending`: unknown whether the server took it, or the store failed; in doubt
    /// after the lease.
    pub unknown: usize,
}

impl Delivered {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Delivered) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.skipped += other.skipped;
        self.deferred += other.deferred;
        self.retried += other.retried;
        self.failed += other.failed;
        self.unknown += other.unknown;
    }

    fn count(&mut self, outcome: Option<&Outcome>) {
        let slot = match outcome {
            Some(Outcome::Sent { .. }) => &mut self.sent,
            Some(Outcome::Skipped { .. }) => &mut self.skipped,
            Some(Outcome::Deferred { .. }) => &mut self.deferred,
            Some(Outcome::Retry { .. }) => &mut self.retried,
            Some(Outcome::Failed { .. }) => &mut self.failed,
            None => &mut self.unknown,
        };
        *slot += 1;
    }
}

impl Engine {
    /// Mark messages whose worker died mid-send as in doubt, then claim one batch of due
    /// messages and send them, up to the mailer's concurrency at once. Returns how many were
    /// claimed. A refused recipient fails only its own message.
    pub async fn deliver(&self, now: Timestamp) -> Result<usize, EngineError> {
        Ok(self.deliver_counted(now).await?.claimed)
    }

    /// [`Engine::deliver`], counting the messages by outcome (`kanta journeys run`'s summary).
    pub async fn deliver_counted(&self, now: Timestamp) -> Result<Delivered, EngineError> {
        let in_doubt = self.store.mark_in_doubt(now).await?;
        if in_doubt > 0 {
            tracing::warn!(
                "journey engine: {in_doubt} message(s) left in sending by a stopped worker are now in doubt"
            );
        }
        let claimed = self
            .store
            .claim_messages(&self.config.owner, now, self.config.message_lease, self.config.message_batch)
            .await?;
        let concurrency = self.config.email.as_ref().map_or(1, |e| e.concurrency.max(1)) as usize;
        // A chunk of `concurrency` messages at a time: checked, started (one commit), sent side
        // by side, completed (one commit). So a crash leaves at most one chunk's sends in doubt,
        // and the store commits twice per chunk rather than twice per message. The rest of a
        // batch left by a store error stays claimed and unstarted: due again after its lease.
        let mut delivered = Delivered { claimed: claimed.len(), ..Delivered::default() };
        for chunk in claimed.chunks(concurrency) {
            self.deliver_chunk(chunk, now, &mut delivered).await?;
        }
        Ok(delivered)
    }

    async fn deliver_chunk(
        &self,
        chunk: &[ClaimedMessage],
        now: Timestamp,
        delivered: &mut Delivered,
    ) -> Result<(), EngineError> {
        let prepared = futures_util::future::join_all(chunk.iter().map(|m| self.prepare(m, now))).await;
        let mut done: Vec<(&ClaimedMessage, Outcome)> = Vec::with_capacity(chunk.len());
        let mut sends: Vec<(&ClaimedMessage, Dispatch)> = Vec::new();
        for (m, prepared) in chunk.iter().zip(prepared) {
            match prepared {
                Ok(Prepared::Done(outcome)) => done.push((m, outcome)),
                Ok(Prepared::Send(send)) => sends.push((m, send)),
                // Not started: due again after the lease.
                Err(e) => {
                    tracing::warn!(message = %m.id, journey = %m.journey, "journey engine: preparing a message failed: {e}");
                    delivered.count(None);
                }
            }
        }
        for (_, outcome) in &done {
            delivered.count(Some(outcome));
        }
        let leases: Vec<_> = sends.iter().map(|(m, _)| (m.id, &m.lease)).collect();
        let started = self.store.start_messages(&leases, now).await?;
        let sends = sends.into_iter().zip(started).filter_map(|(send, started)| {
            if !started {
                tracing::warn!(message = %send.0.id, "journey engine: the message's lease ran out before its send started");
            }
            started.then_some(send)
        });
        let sent = futures_util::future::join_all(sends.map(|(m, send)| async move {
            match send {
                Dispatch::Email(message) => {
                    let (outcome, bad_mailbox) = self.send_email(m, &message, now).await;
                    (m, outcome, bad_mailbox)
                }
                Dispatch::Webhook => (m, Some(self.call_webhook(m, now).await), false),
            }
        }))
        .await;
        let mut bounced = Vec::new();
        for (m, outcome, bad_mailbox) in sent {
            if bad_mailbox {
                bounced.push(m.recipient.as_str());
            }
            delivered.count(outcome.as_ref());
            match outcome {
                Some(outcome) => done.push((m, outcome)),
                None => tracing::warn!(
                    message = %m.id,
                    "journey engine: unknown whether the SMTP server took the message; it stays in sending and becomes in doubt"
                ),
            }
        }
        let records: Vec<_> = done.iter().map(|(m, outcome)| (m.id, &m.lease, outcome)).collect();
        let recorded = self.store.complete_messages(&records, now).await?;
        // A mailbox the server says does not exist is a hard bounce at SMTP time: no journey
        // mails it again (the suppression list is checked at every send).
        for address in bounced {
            self.store.suppress(address, SuppressionReason::HardBounce, now).await?;
            tracing::info!("journey engine: {address} suppressed: the server refused the mailbox");
        }
        for ((m, _), recorded) in done.iter().zip(recorded) {
            if !recorded {
                tracing::warn!(message = %m.id, "journey engine: the message's lease was lost before its outcome was recorded");
            }
        }
        Ok(())
    }

    /// The retry time after the message's `attempts`-th claim.
    fn retry_at(m: &ClaimedMessage, now: Timestamp) -> Timestamp {
        let attempt = u32::try_from(m.attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        now.saturating_add(kanta_journey::backoff(attempt, &m.idempotency_key))
    }

    /// The checks at send time: what becomes of the message without sending (skipped,
    /// deferred, failed), or what to send.
    async fn prepare(&self, m: &ClaimedMessage, now: Timestamp) -> Result<Prepared, EngineError> {
        if m.channel == Channel::Webhook {
            if self.webhook_secret(&m.recipient).is_none() {
                return Ok(Prepared::Done(Outcome::Failed { response: UNSIGNED.into() }));
            }
            return Ok(Prepared::Send(Dispatch::Webhook));
        }
        let payload: EmailPayload = match serde_json::from_str(&m.payload) {
            Ok(p) => p,
            Err(e) => return Ok(Prepared::Done(Outcome::Failed { response: format!("unreadable payload: {e}") })),
        };
        let external = self.store.customer_external_id(m.customer).await?;
        let record = match &external {
            Some(id) => self.store.customer(id, 0).await?,
            None => None,
        };
        let Some(record) = record.filter(|r| r.profile.erased_at.is_none()) else {
            return Ok(Prepared::Done(Outcome::Skipped {
                skip: Skip::Cancelled,
                detail: Some("the customer is gone".into()),
            }));
        };
        let kind = if m.transactional { MessageKind::Transactional } else { MessageKind::Marketing };
        let guardrails = &self.config.guardrails;
        let sent_in_window = match (kind, guardrails.cap) {
            (MessageKind::Marketing, FrequencyCap::Limit(cap)) => {
                // The window is (now − window, now]; the store's `since` is inclusive.
                let since = Timestamp::from_micros(cap.window_start(now).micros().saturating_add(1));
                self.store.marketing_sent_since(m.customer, since, Some(m.id)).await?
            }
            _ => 0,
        };
        let journey_zone = match self.cache.version(&*self.store, &m.journey, m.version).await {
            Ok(loaded) => loaded.journey.timezone,
            Err(_) => None,
        };
        let recipient = Recipient {
            consent: crate::context::email_consent(&record),
            suppressed: self.store.is_suppressed(&m.recipient).await?,
            sent_in_window,
            tz: crate::context::zone(Some(&record), journey_zone, self.config.default_zone),
        };
        match kanta_journey::decide(kind, guardrails, &recipient, now)? {
            Decision::Defer(until) => return Ok(Prepared::Done(Outcome::Deferred { not_before: until })),
            Decision::Skip(reason) => {
                let skip = match reason {
                    SkipReason::NoConsent => Skip::NoConsent,
                    SkipReason::Suppressed => Skip::Suppressed,
                    SkipReason::Capped => Skip::Capped,
                };
                return Ok(Prepared::Done(Outcome::Skipped {
                    skip,
                    detail: Some(format!("{} at send time", reason.as_str())),
                }));
            }
            Decision::Send => {}
        }
        let (Some(_), Some(email)) = (&self.mailer, &self.config.email) else {
            return Ok(Prepared::Done(Outcome::Retry {
                response: "email is not configured ([email] in the settings)".into(),
                not_before: Self::retry_at(m, now),
            }));
        };
        let kind = match (m.transactional, payload.unsubscribe_url) {
            (true, _) => Kind::Transactional,
            (false, Some(unsubscribe_url)) => Kind::Marketing { unsubscribe_url },
            (false, None) => {
                // Marketing mail always carries List-Unsubscribe; a row without a link cannot go.
                return Ok(Prepared::Done(Outcome::Failed {
                    response: "marketing message without an unsubscribe link".into(),
                }));
            }
        };
        let key = MessageKey::new(&m.journey, m.version, &m.customer.to_string(), m.run.0, &m.step, m.occurrence);
        let outgoing = Outgoing {
            from: &email.from,
            to: &m.recipient,
            to_name: payload.to_name.as_deref(),
            subject: &payload.subject,
            html: &payload.html,
            text: &payload.text,
            key: &key,
            kind: &kind,
            date: now,
        };
        Ok(match kanta_mail::compose(&outgoing) {
            Ok(message) => Prepared::Send(Dispatch::Email(Box::new(message))),
            Err(e) => Prepared::Done(Outcome::Failed { response: e.to_string() }),
        })
    }

    /// Send a started email: its outcome (`None`: unknown, leave the row in `sending`) and
    /// whether the server refused the mailbox itself ([`kanta_mail::Outcome::is_bad_mailbox`]).
    async fn send_email(
        &self,
        m: &ClaimedMessage,
        message: &kanta_mail::Message,
        now: Timestamp,
    ) -> (Option<Outcome>, bool) {
        let Some(mailer) = self.mailer.as_ref() else { return (None, false) };
        let sent = mailer.send(message).await;
        let bad_mailbox = sent.is_bad_mailbox();
        let outcome = match sent {
            kanta_mail::Outcome::Sent { response } => Some(Outcome::Sent { response }),
            kanta_mail::Outcome::Permanent { code, text } => Some(Outcome::Failed { response: reply(code, &text) }),
            kanta_mail::Outcome::Temporary { code, text } => {
                Some(Outcome::Retry { response: reply(code, &text), not_before: Self::retry_at(m, now) })
            }
            kanta_mail::Outcome::Unknown { .. } => None,
        };
        (outcome, bad_mailbox)
    }

    /// The secret a webhook call to `url` is signed with: the configured endpoint's whose URL
    /// it is, else the journeys' `webhook_secret` (a `url:` step); `None`: it cannot be signed.
    fn webhook_secret(&self, url: &str) -> Option<&[u8]> {
        match self.config.webhooks.iter().find(|e| e.url == url) {
            Some(endpoint) => Some(&endpoint.secret),
            None => self.config.webhook_secret.as_deref(),
        }
    }

    /// POST the body, signed like kanta's outbound webhooks ([`Engine::webhook_secret`]; an
    /// unsigned call is never made, `prepare` fails it). 2xx is sent; 408, 429 and 5xx are
    /// retried with backoff; other 4xx fail; no connection or no answer is retried (webhook
    /// receivers deduplicate on the message id header, unlike mailboxes).
    async fn call_webhook(&self, m: &ClaimedMessage, now: Timestamp) -> Outcome {
        let Some(secret) = self.webhook_secret(&m.recipient) else {
            // `prepare` failed it already; settings do not change under a running engine.
            return Outcome::Failed { response: UNSIGNED.into() };
        };
        let seconds = now.micros().div_euclid(1_000_000);
        let request = self
            .http
            .post(&m.recipient)
            .header("content-type", "application/json")
            .header("kanta-message-id", &m.message_id)
            .header(kanta_webhooks::sign::HEADER, kanta_webhooks::sign::sign(secret, seconds, m.payload.as_bytes()))
            .body(m.payload.clone());
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = format!("HTTP {}", status.as_u16());
                if status.is_success() {
                    Outcome::Sent { response: text }
                } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    Outcome::Retry { response: text, not_before: Self::retry_at(m, now) }
                } else {
                    Outcome::Failed { response: text }
                }
            }
            Err(e) => Outcome::Retry { response: e.to_string(), not_before: Self::retry_at(m, now) },
        }
    }
}

/// A claimed message after its checks.
enum Prepared {
    /// Decided without sending: skipped, deferred or failed.
    Done(Outcome),
    /// To send.
    Send(Dispatch),
}

/// What a started send does.
enum Dispatch {
    /// An email, composed.
    Email(Box<kanta_mail::Message>),
    /// A webhook call.
    Webhook,
}

/// Why a `webhook: { url: … }` step's call fails without a `[journeys] webhook_secret`.
const UNSIGNED: &str = "not sent: a `webhook: { url: … }` step is signed with `[journeys] webhook_secret` (or \
                        `webhook_secret_env`), which is not set; or name a `[[webhooks]]` endpoint instead";

/// `550 5.1.1 no such user`, or the text alone.
fn reply(code: Option<u16>, text: &str) -> String {
    match code {
        Some(code) => format!("{code} {text}"),
        None => text.to_owned(),
    }
}
