//! Advancing runs: claim the due ones and walk each through its compiled steps until it waits
//! or ends, then write the new position, the history and the messages in one
//! `advance_run` transaction (so a crash repeats a step's decisions, never its messages: they
//! are idempotent on their keys).
//!
//! A run is never in a loop (arms and `on_timeout` lists rejoin *after* their step), so every
//! step is visited at most once per run and its occurrence is 1.

use std::sync::Arc;

use chrono_tz::Tz;
use kanta_domain::Timestamp;
use kanta_journey::{Action, Awaited, Compiled, CompiledStep, Next, WebhookTarget};
use kanta_mail::{Kind, MessageKey, MessageSpec, Outgoing, Rendered};
use kanta_store::CustomerRecord;
use kanta_store::journey::{
    Channel, ClaimedRun, NewMessage, Next as RunNext, RunEnd, RunUpdate, Skip, StepRecord, Wait,
};
use serde_json::{Value, json};

use crate::cache::Loaded;
use crate::{Engine, EngineError};

/// More steps than any journey has in one pass: a guard, never reached by a valid journey.
const MAX_STEPS_PER_PASS: usize = 1_000;

/// What a run waiting at a wait step is due at and waits for, starting at `now`.
pub(crate) fn wait_position(
    action: &Action,
    tz: Tz,
    now: Timestamp,
) -> Result<(Option<Timestamp>, Option<Wait>), EngineError> {
    Ok(match action {
        Action::Wait(d) => (Some(now.saturating_add(*d)), None),
        Action::WaitUntil { local_time, weekdays } => {
            (Some(kanta_journey::next_local_time(now, tz, *local_time, *weekdays)?), None)
        }
        Action::WaitFor { awaited, timeout, .. } => {
            let wait = match awaited {
                Awaited::Event { name, match_key } => Wait::Event { name: name.clone(), keyed: *match_key },
                Awaited::EntersSegment(name) => Wait::Segment { name: name.clone() },
            };
            (Some(now.saturating_add(*timeout)), Some(wait))
        }
        _ => (Some(now), None),
    })
}

/// The email payload kept in the outbox row: what was rendered, sent byte for byte.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct EmailPayload {
    pub(crate) subject: String,
    pub(crate) html: String,
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) unsubscribe_url: Option<String>,
}

/// A `send_email` step rendered for one customer ([`Engine::preview`]).
#[derive(Debug, Clone)]
pub struct Preview {
    /// The journey.
    pub journey: String,
    /// The version rendered (the journey's current one).
    pub version: i64,
    /// The step's id.
    pub step: String,
    /// Exempt from marketing consent, the cap and quiet hours; no List-Unsubscribe.
    pub transactional: bool,
    /// The customer's address, if they have one (without it a run records `no_address`).
    pub to: Option<String>,
    /// The customer's name, the recipient's display name.
    pub to_name: Option<String>,
    /// The signed unsubscribe link of marketing mail, when `[email]` is configured.
    pub unsubscribe_url: Option<String>,
    /// Subject, HTML and text, as rendered.
    pub rendered: Rendered,
    /// The whole message (RFC 5322: headers, the text and HTML parts) as it would be sent;
    /// only with `[email]` settings and an address, and for marketing mail a link.
    pub message: Option<Vec<u8>>,
}

/// What one [`Engine::advance_counted`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advanced {
    /// Runs claimed.
    pub runs: usize,
    /// Steps they went through (their history records: a wait ended, a branch taken, a message
    /// queued…), in the passes that were committed.
    pub steps: usize,
}

/// The customer of a run, read once per pass when a step needs it.
struct Customer {
    external: String,
    record: Option<CustomerRecord>,
}

/// One pass over one run.
struct Walk<'a> {
    engine: &'a Engine,
    run: &'a ClaimedRun,
    loaded: &'a Loaded,
    now: Timestamp,
    late: bool,
    customer: Option<Customer>,
    history: Vec<StepRecord>,
    messages: Vec<NewMessage>,
}

impl Engine {
    /// Claim the runs due at `now` (one batch) and advance each until it waits or ends.
    /// Returns how many were claimed; a run whose pass failed (the store) is left to its
    /// lease and claimed again later.
    pub async fn advance(&self, now: Timestamp) -> Result<usize, EngineError> {
        Ok(self.advance_counted(now).await?.runs)
    }

    /// [`Engine::advance`], counting the steps the runs went through as well.
    pub async fn advance_counted(&self, now: Timestamp) -> Result<Advanced, EngineError> {
        let runs =
            self.store.claim_due_runs(&self.config.owner, now, self.config.run_lease, self.config.run_batch).await?;
        let mut advanced = Advanced { runs: runs.len(), steps: 0 };
        // Every run walked first, then all their moves written in one transaction (one commit
        // per batch, not per run); by run id, so two batches touching a run lock in one order.
        let mut walked = Vec::with_capacity(runs.len());
        for run in &runs {
            match self.walk_run(run, now).await {
                Ok(update) => walked.push((run, update)),
                Err(e) => {
                    tracing::warn!(run = %run.id, journey = %run.journey, "journey engine: advancing a run failed: {e}")
                }
            }
        }
        walked.sort_by_key(|(run, _)| run.id);
        let batch: Vec<_> = walked.iter().map(|(run, update)| (run.id, &run.lease, update)).collect();
        let written = match self.store.advance_runs(&batch, now).await {
            Ok(written) => written,
            Err(e) => {
                // One run's write failed the batch (say, a deadlock with an exit on
                // PostgreSQL): each alone, so the others are not held back until their leases end.
                tracing::warn!("journey engine: writing {} runs at once failed, one by one now: {e}", batch.len());
                let mut written = Vec::with_capacity(batch.len());
                for (id, lease, update) in &batch {
                    written.push(match self.store.advance_run(*id, lease, update, now).await {
                        Ok(done) => done,
                        Err(e) => {
                            tracing::warn!(run = %id, "journey engine: advancing a run failed: {e}");
                            false
                        }
                    });
                }
                written
            }
        };
        for ((_, update), done) in walked.iter().zip(written) {
            if done {
                advanced.steps += update.history.len();
            }
        }
        Ok(advanced)
    }

    /// Where the run goes this pass, with the steps it passes and the messages it enqueues.
    async fn walk_run(&self, run: &ClaimedRun, now: Timestamp) -> Result<RunUpdate, EngineError> {
        Ok(match self.cache.version(&*self.store, &run.journey, run.version).await {
            Ok(loaded) => walk(self, run, &loaded, now).await?,
            Err(e @ EngineError::StoredJourney { .. }) => RunUpdate {
                next: RunNext::End { end: RunEnd::Exited, reason: Some(e.to_string()) },
                history: Vec::new(),
                messages: Vec::new(),
            },
            Err(e) => return Err(e),
        })
    }

    /// `send_email` step `step` of `journey`'s current version rendered for customer
    /// `customer` (external id) as a run reaching it at `now` would render it, with the
    /// version's own templates, the customer's profile, scores, recent orders and
    /// `next_category`, and, when email is configured and the customer has an address, the
    /// whole message as it would be sent: `kanta journeys preview`. Nothing is written.
    pub async fn preview(
        &self,
        journey: &str,
        step: &str,
        customer: &str,
        now: Timestamp,
    ) -> Result<Preview, EngineError> {
        let heads = self.cache.heads(&*self.store).await?;
        let head = heads.get(journey).ok_or_else(|| EngineError::UnknownJourney(journey.to_owned()))?;
        let loaded = &head.loaded;
        let Some(CompiledStep { action: Action::SendEmail(email), id, .. }) = loaded.compiled.step(step) else {
            let email_steps = loaded
                .compiled
                .steps
                .iter()
                .filter(|s| matches!(s.action, Action::SendEmail(_)))
                .map(|s| s.id.as_str().to_owned())
                .collect();
            return Err(EngineError::NotAnEmailStep {
                journey: journey.to_owned(),
                step: step.to_owned(),
                email_steps,
            });
        };
        let record =
            self.store.customer(customer, 0).await?.ok_or_else(|| EngineError::UnknownCustomer(customer.to_owned()))?;
        let unsubscribe_url = if email.transactional { None } else { self.unsubscribe_url(customer, now) };
        let context = crate::context::message_context(&record, unsubscribe_url.clone());
        let rendered = loaded.templates.render(&spec(email), &context)?;
        let to = record.profile.email.clone();
        let to_name = record.profile.name.clone();
        // A real send's Message-ID names the internal customer id and the run; a preview has no
        // run, so run 0.
        let internal = self.store.customer_key(customer).await?.unwrap_or_default();
        let key = MessageKey::new(journey, loaded.version, &internal.to_string(), 0, id.as_str(), 1);
        let kind = match (&unsubscribe_url, email.transactional) {
            (_, true) => Some(Kind::Transactional),
            (Some(url), false) => Some(Kind::Marketing { unsubscribe_url: url.clone() }),
            (None, false) => None,
        };
        let message = match (&self.config.email, &to, &kind) {
            (Some(settings), Some(to), Some(kind)) => {
                let outgoing = Outgoing {
                    from: &settings.from,
                    to,
                    to_name: to_name.as_deref(),
                    subject: &rendered.subject,
                    html: &rendered.html,
                    text: &rendered.text,
                    key: &key,
                    kind,
                    date: now,
                };
                Some(kanta_mail::compose(&outgoing)?.formatted())
            }
            _ => None,
        };
        Ok(Preview {
            journey: journey.to_owned(),
            version: loaded.version,
            step: id.as_str().to_owned(),
            transactional: email.transactional,
            to,
            to_name,
            unsubscribe_url,
            rendered,
            message,
        })
    }

    /// The signed one-click unsubscribe link for `customer`, when email is configured.
    fn unsubscribe_url(&self, customer: &str, now: Timestamp) -> Option<String> {
        let email = self.config.email.as_ref()?;
        let token = email.unsubscribe_key.sign(customer, kanta_mail::Channel::Email, now);
        Some(kanta_mail::unsubscribe::unsubscribe_url(&email.public_url, &token))
    }
}

fn spec(email: &kanta_journey::Email) -> MessageSpec {
    MessageSpec {
        subject: email.subject.clone(),
        body: match &email.body {
            kanta_journey::Body::Inline { html, text } => {
                kanta_mail::Body::Inline { html: html.clone(), text: text.clone() }
            }
            kanta_journey::Body::Template(name) => kanta_mail::Body::Template(name.clone()),
        },
    }
}

async fn walk(
    engine: &Engine,
    run: &ClaimedRun,
    loaded: &Arc<Loaded>,
    now: Timestamp,
) -> Result<RunUpdate, EngineError> {
    let late = run.due_at.is_some_and(|due| kanta_journey::too_late(due, now, loaded.journey.skip_if_late_by));
    let mut w = Walk { engine, run, loaded, now, late, customer: None, history: Vec::new(), messages: Vec::new() };
    let compiled: &Compiled = &loaded.compiled;
    let Some(step) = compiled.step(&run.step) else {
        let reason = format!("step `{}` is not in version {} of the journey", run.step, run.version);
        return Ok(w.end(RunEnd::Exited, Some(reason)));
    };
    // A run claimed at a wait step has finished waiting (see the crate docs).
    let mut cursor = match &step.action {
        Action::Wait(_) | Action::WaitUntil { .. } => {
            w.record(step, "waited", None);
            step.next.clone()
        }
        Action::WaitFor { on_timeout, .. } => {
            if let Some(at) = run.woken_at {
                w.record(step, "arrived", Some(json!({"at": at.to_rfc3339()})));
                step.next.clone()
            } else {
                w.record(step, "timed_out", None);
                on_timeout.clone()
            }
        }
        _ => Next::Step(step.id.clone()),
    };
    if late {
        w.history.push(StepRecord {
            step: run.step.clone(),
            occurrence: 1,
            at: now,
            outcome: "late".into(),
            detail: run.due_at.map(|due| json!({"due_at": due.to_rfc3339()})),
        });
    }
    for _ in 0..MAX_STEPS_PER_PASS {
        let id = match cursor {
            Next::End => return Ok(w.end(RunEnd::Completed, None)),
            Next::Exit => return Ok(w.end(RunEnd::Exited, Some("exit step".into()))),
            Next::Step(id) => id,
        };
        let Some(step) = compiled.step(id.as_str()) else {
            return Ok(w.end(RunEnd::Exited, Some(format!("step `{id}` is missing"))));
        };
        cursor = match &step.action {
            Action::Wait(_) | Action::WaitUntil { .. } | Action::WaitFor { .. } => {
                let tz = w.zone().await?;
                let (due_at, wait) = wait_position(&step.action, tz, now)?;
                w.record(step, "waiting", due_at.map(|d| json!({"until": d.to_rfc3339()})));
                return Ok(RunUpdate {
                    next: RunNext::Step { step: step.id.as_str().to_owned(), due_at, wait },
                    history: w.history,
                    messages: w.messages,
                });
            }
            Action::Branch { condition, then, otherwise } => {
                let holds = match kanta_segment::parse(condition) {
                    Ok(expr) => engine.store.customer_matches(run.customer, &expr, now).await?,
                    Err(e) => {
                        // Validation parses every condition; a stored one that does not parse
                        // takes the `else` arm rather than stopping every run.
                        tracing::warn!(journey = %run.journey, step = %step.id, "branch condition: {e}");
                        false
                    }
                };
                w.record(step, if holds { "branch_then" } else { "branch_else" }, None);
                if holds { then.clone() } else { otherwise.clone() }
            }
            Action::Split { arms } => {
                let customer = w.customer().await?.external.clone();
                let weights: Vec<u32> = arms.iter().map(|(weight, _)| *weight).collect();
                let arm =
                    kanta_journey::split::choose(&customer, &run.journey, step.id.as_str(), &weights).unwrap_or(0);
                w.record(step, "split", Some(json!({"arm": arm})));
                arms.get(arm).map_or_else(|| step.next.clone(), |(_, next)| next.clone())
            }
            Action::SendEmail(email) => {
                w.send_email(step, email).await?;
                step.next.clone()
            }
            Action::Webhook(webhook) => {
                w.webhook(step, webhook).await?;
                step.next.clone()
            }
            Action::Update(update) => {
                w.update(step, update).await?;
                step.next.clone()
            }
            Action::Exit => {
                w.record(step, "exit", None);
                Next::Exit
            }
        };
    }
    Ok(w.end(RunEnd::Exited, Some("too many steps in one pass".into())))
}

impl Walk<'_> {
    fn record(&mut self, step: &CompiledStep, outcome: &str, detail: Option<Value>) {
        self.history.push(StepRecord {
            step: step.id.as_str().to_owned(),
            occurrence: 1,
            at: self.now,
            outcome: outcome.to_owned(),
            detail,
        });
    }

    fn end(self, end: RunEnd, reason: Option<String>) -> RunUpdate {
        RunUpdate { next: RunNext::End { end, reason }, history: self.history, messages: self.messages }
    }

    async fn customer(&mut self) -> Result<&Customer, EngineError> {
        if self.customer.is_none() {
            let external = self.engine.store.customer_external_id(self.run.customer).await?.unwrap_or_default();
            let record = self.engine.store.customer(&external, 0).await?;
            self.customer = Some(Customer { external, record });
        }
        // Filled just above.
        self.customer.as_ref().ok_or_else(|| EngineError::UnknownCustomer(self.run.customer.to_string()))
    }

    async fn zone(&mut self) -> Result<Tz, EngineError> {
        let (journey, settings) = (self.loaded.journey.timezone, self.engine.config.default_zone);
        let customer = self.customer().await?;
        Ok(crate::context::zone(customer.record.as_ref(), journey, settings))
    }

    /// The Message-ID of this run's message at `step` (occurrence 1): the idempotency key,
    /// with the internal customer id (an erased customer's Message-IDs name nobody).
    fn message_id(&self, step: &CompiledStep) -> String {
        let r = self.run;
        MessageKey::new(&r.journey, r.version, &r.customer.to_string(), r.id.0, step.id.as_str(), 1)
            .message_id(&self.engine.domain)
    }

    fn skip(&self) -> Option<Skip> {
        self.loaded.journey.dry_run.then_some(Skip::DryRun)
    }

    async fn send_email(&mut self, step: &CompiledStep, email: &kanta_journey::Email) -> Result<(), EngineError> {
        if self.late {
            self.record(step, "skipped_late", None);
            return Ok(());
        }
        let (now, engine) = (self.now, self.engine);
        let customer = self.customer().await?;
        let Some(record) = customer.record.as_ref().filter(|r| r.profile.erased_at.is_none()) else {
            self.record(step, "no_customer", None);
            return Ok(());
        };
        let Some(address) = record.profile.email.clone() else {
            self.record(step, "no_address", None);
            return Ok(());
        };
        let external = customer.external.clone();
        let to_name = record.profile.name.clone();
        let unsubscribe = if email.transactional { None } else { engine.unsubscribe_url(&external, now) };
        let context = crate::context::message_context(record, unsubscribe.clone());
        // The run's own version's templates, whatever was applied since.
        let rendered = match self.loaded.templates.render(&spec(email), &context) {
            Ok(rendered) => rendered,
            Err(e) => {
                self.record(step, "render_failed", Some(json!({"error": e.to_string()})));
                return Ok(());
            }
        };
        let payload = EmailPayload {
            subject: rendered.subject.clone(),
            html: rendered.html,
            text: rendered.text,
            to_name,
            unsubscribe_url: unsubscribe,
        };
        let payload = serde_json::to_string(&payload)?;
        let skip = self.skip();
        self.messages.push(NewMessage {
            step: step.id.as_str().to_owned(),
            occurrence: 1,
            channel: Channel::Email,
            transactional: email.transactional,
            recipient: address,
            payload,
            message_id: self.message_id(step),
            not_before: now,
            skip,
        });
        let outcome = if skip.is_some() { "dry_run" } else { "queued" };
        self.record(step, outcome, Some(json!({"subject": rendered.subject})));
        Ok(())
    }

    async fn webhook(&mut self, step: &CompiledStep, webhook: &kanta_journey::Webhook) -> Result<(), EngineError> {
        if self.late {
            self.record(step, "skipped_late", None);
            return Ok(());
        }
        let url = match &webhook.target {
            WebhookTarget::Url(url) => url.clone(),
            WebhookTarget::Endpoint(name) => match self.engine.config.webhooks.iter().find(|e| &e.name == name) {
                Some(endpoint) => endpoint.url.clone(),
                None => {
                    self.record(step, "unknown_endpoint", Some(json!({"endpoint": name})));
                    return Ok(());
                }
            },
        };
        let templates = &self.loaded.templates;
        let customer = self.customer().await?;
        // Nothing goes out about an erased customer, as for email.
        let Some(record) = customer.record.as_ref().filter(|r| r.profile.erased_at.is_none()) else {
            self.record(step, "no_customer", None);
            return Ok(());
        };
        let data = match &webhook.body {
            Some(body) => match templates.render_json(body, &crate::context::message_context(record, None)) {
                Ok(rendered) => Some(rendered),
                Err(e) => {
                    self.record(step, "render_failed", Some(json!({"error": e.to_string()})));
                    return Ok(());
                }
            },
            None => None,
        };
        let customer = customer.external.clone();
        let r = self.run;
        let body = json!({
            "type": "journey.webhook",
            "journey": r.journey,
            "version": r.version,
            "step": step.id.as_str(),
            "run": r.id.0,
            "key": r.key,
            "customer": customer,
            "context": r.context,
            "data": data,
        });
        let skip = self.skip();
        self.messages.push(NewMessage {
            step: step.id.as_str().to_owned(),
            occurrence: 1,
            channel: Channel::Webhook,
            transactional: false,
            recipient: url,
            payload: body.to_string(),
            message_id: self.message_id(step),
            not_before: self.now,
            skip,
        });
        self.record(step, if skip.is_some() { "dry_run" } else { "queued" }, None);
        Ok(())
    }

    /// Sets attributes and adds tags (kept as the `tags` attribute, a list without
    /// duplicates) through the customer write, which merges attributes. Outside the run's
    /// transaction: a pass repeated after a crash writes the same values again, which changes
    /// nothing. A dry run records the update and writes nothing.
    async fn update(&mut self, step: &CompiledStep, update: &kanta_journey::Update) -> Result<(), EngineError> {
        let now = self.now;
        let dry = self.loaded.journey.dry_run;
        let customer = self.customer().await?;
        let Some(record) = customer.record.as_ref().filter(|r| r.profile.erased_at.is_none()) else {
            self.record(step, "no_customer", None);
            return Ok(());
        };
        let mut attributes = serde_json::Map::new();
        for (name, value) in &update.set {
            let name = name.strip_prefix("attributes.").unwrap_or(name);
            attributes.insert(name.to_owned(), value.clone());
        }
        if !update.tags.is_empty() {
            let mut tags: Vec<Value> = record
                .profile
                .attributes
                .as_ref()
                .and_then(|a| a.get("tags"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for tag in &update.tags {
                let tag = Value::String(tag.clone());
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            attributes.insert("tags".into(), Value::Array(tags));
        }
        let detail = json!({"attributes": attributes});
        if dry {
            self.record(step, "dry_run", Some(detail));
            return Ok(());
        }
        let batch = json!([{"id": customer.external, "attributes": attributes}]).to_string();
        let parsed =
            kanta_store::record::parse_batch::<kanta_store::Customer>(batch.as_bytes(), kanta_domain::TimeRange::ALL);
        match parsed {
            Ok(batch) if batch.rejected.is_empty() => {
                let customers: Vec<kanta_store::Customer> = batch.valid.into_iter().map(|(_, c)| c).collect();
                self.engine.store.write_customers(&customers, now).await?;
                self.record(step, "updated", Some(detail));
            }
            Ok(batch) => {
                let problems: Vec<String> = batch.rejected.iter().map(|r| format!("{r:?}")).collect();
                self.record(step, "update_refused", Some(json!({"problems": problems})));
            }
            Err(e) => self.record(step, "update_refused", Some(json!({"problems": [e.to_string()]}))),
        }
        Ok(())
    }
}
