//! One typed settings tree for the server and the store-backed commands (`serve`, `token`,
//! `import`, `score`, `webhooks`).
//!
//! Layers, later ones winning: built-in defaults, the TOML file (`--config FILE`, else
//! `KANTA_CONFIG`, else `./kanta.toml` when it exists; [`load`]), `KANTA_…` environment
//! variables, and command-line flags. The last two are the CLI's: clap reads each flag and its
//! variable together, the flag winning, and `kanta-cli` applies them onto the loaded [`Settings`].
//! The database URL may carry a password: it is a [`DatabaseUrl`], whose `Debug` and
//! `Display` hide it, so it cannot leak into logs by accident.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kanta_domain::{ModelKind, TimeBounds, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::SettingsError;

/// The commented example printed by `kanta config default`; a test checks it parses to the
/// defaults.
pub const DEFAULT_TOML: &str = r#"# kanta settings. Every value here is the built-in default; delete what you do not change.
# Precedence: command-line flags > KANTA_* environment variables > this file > defaults.
# kanta reads --config FILE, else $KANTA_CONFIG, else ./kanta.toml if it exists.

[database]
# sqlite://FILE (embedded; the file is created on first use) or
# postgres://USER:PASSWORD@HOST:PORT/DB. Environment: KANTA_DATABASE_URL. Flag: --db.
url = "sqlite://kanta.db"
# How long to keep trying a database server that does not answer (each failed attempt is
# reported with its host and port; the command then exits with code 1).
connect_timeout = "30s"

[server]
# Address for `kanta serve`; port 0 picks a free one. Environment: KANTA_LISTEN. Flag: --listen.
listen = "127.0.0.1:8080"
# Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
# Environment: KANTA_GRACE_SECONDS. Flag: --grace.
grace_seconds = 30
# A request's headers must arrive within header_timeout of the connection opening or of the
# previous response (this also closes idle keep-alive connections); its body within
# body_timeout (else 408). Connections beyond max_connections are closed when accepted.
header_timeout = "10s"
body_timeout = "30s"
max_connections = 512

[scoring]
# How often `kanta serve` rescores every customer (RFM, stage, models, CLV): a duration such as
# "30m", "6h" or "1d", or "off". The first run starts with the server.
# Environment: KANTA_SCORE_EVERY. Flag: --score-every.
every = "1h"
# The transaction model: auto (the lowest BIC of BG/NBD, MBG/NBD and Pareto/NBD), bgnbd,
# mbgnbd or paretonbd. Flag of `kanta score`: --model.
model = "auto"
# A valuable customer whose probability of being active falls below this is `slipping`.
slipping_below = 0.5
# A scheduled run still going after this long is cancelled (recorded as such; the previous
# scores stay): a duration such as "30m", or "off".
budget = "30m"
# On PostgreSQL, aggregate the orders in the database and bring only the distinct purchase
# histories out (true), or read every order into memory (false; also `kanta score --in-memory`).
# SQLite always scores in memory.
push_down = true

[ingest]
# Times of orders, events, feedback and consent changes must lie between earliest_time and
# max_ahead past the server's clock; others are rejected (422 naming the field, or the import's
# line). max_ahead may be "off".
earliest_time = "1970-01-01T00:00:00Z"
max_ahead = "1d"

# Outbound webhooks: none by default. Each [[webhooks]] table is one endpoint; kanta sends to
# no address that is not named here (redirects are not followed, proxy variables are ignored),
# and to global and loopback addresses only unless the endpoint sets allow_private (checked for
# a literal IP at start-up and for every address a name resolves to, at every connection).
# Deliveries are POSTed as JSON and signed: Kanta-Signature: t=UNIX_SECONDS,v1=HEX, where HEX is
# HMAC-SHA256(secret, "UNIX_SECONDS.BODY"). See the README's "Webhooks" section.
#
# [[webhooks]]
# name = "crm"                               # letters, digits, - _ .; the key of its delivery log
# url = "https://crm.example.com/hooks/kanta"
# secret_env = "KANTA_WEBHOOK_CRM_SECRET"    # or: secret = "at least 16 characters"
# events = ["customer.stage_changed", "segment.entered", "segment.exited"]
# segments = ["slipping-high-value"]         # segment events of these segments only (default: all)
# stages = ["slipping", "lost"]              # stage changes into these stages only (default: all)
# timeout = "10s"                            # per request
# max_attempts = 8                           # per delivery, then it is given up (failed)
# backoff = "30s"                            # wait after a failure, doubling per failure in a row…
# backoff_max = "1h"                         # …up to this
# pause_after = 20                           # failures in a row that pause the endpoint
# poll = "5s"                                # how often it looks for new events
# allow_private = false                      # true: may reach private and link-local addresses
#                                            # (10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7,
#                                            # fe80::/10); loopback is always allowed

# Email for journeys: none by default. Without an [email] table journeys still run and record
# what they would send (dry run), and unsubscribe links are refused as invalid. With one, every
# field is checked when `kanta serve` starts (the SMTP password is masked in `kanta config show`).
#
# [email]
# smtp_url = "smtp://127.0.0.1:2525"   # smtps:// for implicit TLS; user:password@ for auth; STARTTLS when offered
# from = "Shop <hello@shop.example>"
# public_url = "http://127.0.0.1:8080" # the base of unsubscribe links (https://, or http:// on loopback)
# unsubscribe_secret_env = "KANTA_UNSUBSCRIBE_SECRET"  # signs unsubscribe links; or: unsubscribe_secret = "16+ chars"
# rate_per_second = 10
# concurrency = 4
# timeout_seconds = 30

[guardrails]
# Marketing email needs consent: "opt-in" (only customers who granted it) or "opt-out" (all but
# those who revoked it). Transactional messages are exempt from consent, caps and quiet hours.
consent = "opt-in"
# Marketing messages wait out this window of the customer's local time: "HH:MM-HH:MM" or "off".
quiet_hours = "21:00-08:00"
# Marketing messages per customer per rolling window, e.g. "3/7d", or "off".
frequency_cap = "3/7d"
# Soft bounces of an address (POST /v1/bounces) that put it on the suppression list; a hard
# bounce or a complaint suppresses it at once.
soft_bounce_limit = 3
# A share of customers kept out of every marketing journey, to measure what all of them
# together achieve (recorded as entered in arm `global_control`, sent nothing), e.g. "5%".
global_holdout = "0%"

[journeys]
# Whether `kanta serve` runs journeys.
enabled = true
# How often the journey engine looks for due runs and messages.
tick = "1s"
# The zone of local times (quiet hours, wait_until) for customers and journeys without one (IANA).
default_timezone = "UTC"
# An order, event or transition older than this when the engine sees it starts no journey (it
# still ends runs and wakes waits): importing last year's orders must not welcome everyone again.
max_event_age = "1d"
# How long a server holds a claimed run or message. A message found still `sending` after its
# lease (the server died mid-send) becomes `in_doubt` and is never resent by itself; must be
# longer than [email] timeout_seconds.
lease = "5m"
# Signs the calls of `webhook: { url: … }` steps like kanta's outbound webhooks (steps naming a
# [[webhooks]] endpoint use its secret). Without it such a step's call fails, unsent.
# webhook_secret_env = "KANTA_JOURNEY_WEBHOOK_SECRET"   # or: webhook_secret = "16+ chars"

[dashboard]
# Whether `kanta serve` shows the dashboard at / (log in at /login with a read or admin token).
enabled = true
# How numbers and money are written: en, de, de-CH, nl, es, it, pt, da, fi, sv, nb, fr, pl, cs, et.
locale = "en"
# The currency code shown with amounts, e.g. "EUR" (none by default).
# currency = "EUR"
# How long a login lasts; revoking its token ends it at once.
session = "12h"
# Session cookies are marked Secure: "auto" (when the request came over HTTPS through a proxy
# that says so with X-Forwarded-Proto, or [email] public_url is https://), "always" or "never".
secure_cookies = "auto"

# Inbound webhooks: none by default. Each [[inbound]] table accepts customer and consent updates
# from a CRM at POST /v1/hooks/NAME, mapping the CRM's JSON onto kanta's customer fields.
# Signed requests (kanta-signature, hmac-sha256) must carry a timestamp within 5 minutes of the
# server's clock (else 401 "too old" / "from the future"), and each signature is accepted once
# (the same request again within those 5 minutes: 409 replayed).
#
# [[inbound]]
# name = "crm"
# auth = "hmac-sha256"                 # token (a kanta token, scope ingest), kanta-signature or hmac-sha256
# secret_env = "KANTA_INBOUND_CRM_SECRET"  # for the signatures; or: secret = "…"
# signature_header = "X-Signature-256" # hmac-sha256: HMAC-SHA256(secret, "TIMESTAMP.BODY"), hex, sha256=hex or base64
# timestamp_header = "X-Kanta-Timestamp"  # hmac-sha256: TIMESTAMP, the Unix seconds at sending, as signed
# records = "contacts"                 # dot path of the array of items (default: the body itself)
# [inbound.fields]                     # kanta field = dot path in each item
# id = "vid"
# email = "properties.email.value"
# name = "properties.firstname.value"
# "attributes.lifecycle" = "properties.lifecyclestage.value"
# "consent.email" = "properties.email_optin.value"   # true/false, yes/no, subscribed/unsubscribed, …
#
# An email provider's bounce and complaint reports, into the suppression list:
# [[inbound]]
# name = "esp"
# kind = "bounces"                     # customers (the default) or bounces
# auth = "hmac-sha256"
# secret_env = "KANTA_INBOUND_ESP_SECRET"
# signature_header = "X-Esp-Signature"
# [inbound.fields]
# address = "email"                    # required
# kind = "event"                       # required: hard/bounce/permanent, soft/transient/deferred, complaint/spamreport
# source = "provider"                  # optional
"#;

/// All settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The store.
    pub database: Database,
    /// `kanta serve`.
    pub server: Server,
    /// The scoring job.
    pub scoring: Scoring,
    /// Checks of ingested records.
    pub ingest: Ingest,
    /// Sending email (absent: journeys record what they would send).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<kanta_mail::EmailSettings>,
    /// What may be sent to whom, when and how often.
    pub guardrails: Guardrails,
    /// The journey engine.
    pub journeys: Journeys,
    /// The dashboard.
    pub dashboard: Dashboard,
    /// Outbound webhook endpoints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookSettings>,
    /// Inbound webhooks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<InboundSettings>,
}

/// One `[[inbound]]` hook as written; [`InboundSettings::hook`] checks it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSettings {
    /// The name in `/v1/hooks/NAME`.
    pub name: String,
    /// `token`, `kanta-signature` or `hmac-sha256`.
    #[serde(default = "default_inbound_auth")]
    pub auth: String,
    /// The shared secret itself…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<HiddenSecret>,
    /// …or the environment variable that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// For `hmac-sha256`: the header carrying the signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
    /// For `hmac-sha256`: the header carrying the signed Unix time (default `X-Kanta-Timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// Dot path of the array of items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// kanta field → dot path.
    pub fields: std::collections::BTreeMap<String, String>,
    /// `customers` (the default) or `bounces` (an email provider's bounce and complaint reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

fn default_inbound_auth() -> String {
    "token".into()
}

impl InboundSettings {
    /// The hook these settings describe.
    pub fn hook(&self, env: impl Fn(&str) -> Option<String>) -> Result<kanta_api::InboundHook, SettingsError> {
        let name = &self.name;
        let fail = |what: String| SettingsError(format!("inbound hook `{name}`: {what}"));
        let given = secret_value(&self.secret, &self.secret_env, &env).map_err(fail)?;
        let secret = || {
            given
                .clone()
                .map(String::into_bytes)
                .ok_or_else(|| fail(format!("auth `{}` needs exactly one of `secret` and `secret_env`", self.auth)))
        };
        if self.auth != "hmac-sha256"
            && let Some(field) =
                [("signature_header", &self.signature_header), ("timestamp_header", &self.timestamp_header)]
                    .into_iter()
                    .find_map(|(field, value)| value.as_ref().map(|_| field))
        {
            return Err(fail(format!("`{field}` applies to auth `hmac-sha256` only, not `{}`", self.auth)));
        }
        let auth = match self.auth.as_str() {
            "token" => {
                if given.is_some() {
                    return Err(fail("auth `token` takes no secret (the sender presents a kanta token)".into()));
                }
                kanta_api::InboundAuth::Token
            }
            "kanta-signature" => kanta_api::InboundAuth::KantaSignature(secret()?),
            "hmac-sha256" => {
                let header = self
                    .signature_header
                    .clone()
                    .ok_or_else(|| fail("auth `hmac-sha256` needs `signature_header`".into()))?
                    .to_ascii_lowercase();
                let timestamp_header = self
                    .timestamp_header
                    .as_deref()
                    .unwrap_or(kanta_api::DEFAULT_TIMESTAMP_HEADER)
                    .to_ascii_lowercase();
                for (field, value) in [("signature_header", &header), ("timestamp_header", &timestamp_header)] {
                    if axum::http::HeaderName::from_bytes(value.as_bytes()).is_err() {
                        return Err(fail(format!("{field}: `{value}` is not a header name")));
                    }
                }
                if header == timestamp_header {
                    return Err(fail("`signature_header` and `timestamp_header` must be different headers".into()));
                }
                kanta_api::InboundAuth::HmacSha256 { secret: secret()?, header, timestamp_header }
            }
            other => return Err(fail(format!("auth `{other}`: use token, kanta-signature or hmac-sha256"))),
        };
        match self.kind.as_deref().unwrap_or("customers") {
            "customers" => kanta_api::InboundHook::new(name, auth, self.records.clone(), self.fields.clone()),
            "bounces" => kanta_api::InboundHook::bounces(name, auth, self.records.clone(), self.fields.clone()),
            other => Err(format!("inbound hook `{name}`: kind `{other}`: use customers or bounces")),
        }
        .map_err(SettingsError)
    }
}

/// One `[[webhooks]]` endpoint as written; [`WebhookSettings::endpoint`] checks it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Unique name.
    pub name: String,
    /// Where to POST.
    pub url: WebhookUrl,
    /// The signing secret itself…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<HiddenSecret>,
    /// …or the environment variable that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Event types (default: all).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// Segment events of these segments only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// Stage changes into these stages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    /// Per request.
    #[serde(default = "defaults::timeout")]
    pub timeout: Every,
    /// Attempts per delivery.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// First wait after a failure.
    #[serde(default = "defaults::backoff")]
    pub backoff: Every,
    /// Longest wait.
    #[serde(default = "defaults::backoff_max")]
    pub backoff_max: Every,
    /// Failures in a row that pause the endpoint.
    #[serde(default = "defaults::pause_after")]
    pub pause_after: u32,
    /// Idle polling interval.
    #[serde(default = "defaults::poll")]
    pub poll: Every,
    /// May reach private and link-local addresses (loopback is always allowed).
    #[serde(default)]
    pub allow_private: bool,
}

fn all_events() -> Vec<String> {
    kanta_webhooks::EventType::ALL.iter().map(|e| e.as_str().to_string()).collect()
}

/// Defaults of [`WebhookSettings`], from [`kanta_webhooks::Policy::default`].
mod defaults {
    use super::Every;

    fn policy() -> kanta_webhooks::Policy {
        kanta_webhooks::Policy::default()
    }
    pub fn timeout() -> Every {
        Every(Some(policy().timeout))
    }
    pub fn max_attempts() -> u32 {
        policy().max_attempts
    }
    pub fn backoff() -> Every {
        Every(Some(policy().backoff))
    }
    pub fn backoff_max() -> Every {
        Every(Some(policy().backoff_max))
    }
    pub fn pause_after() -> u32 {
        policy().pause_after
    }
    pub fn poll() -> Every {
        Every(Some(policy().poll))
    }
}

/// A webhook URL in the settings: `Debug`, `Display` and `kanta config show` mask a userinfo
/// password and secret-looking query values ([`kanta_webhooks::mask_url`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// The URL as configured, for sending only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", kanta_webhooks::mask_url(&self.0))
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kanta_webhooks::mask_url(&self.0))
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A secret in the settings: `Debug` and `kanta config show` print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct HiddenSecret(String);

impl fmt::Debug for HiddenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for HiddenSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A secret given as `secret` or read from the variable `secret_env` names; `None` when neither
/// is given, an error when both are or the variable is not set.
fn secret_value(
    secret: &Option<HiddenSecret>,
    secret_env: &Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match (secret, secret_env) {
        (Some(s), None) => Ok(Some(s.0.clone())),
        (None, Some(var)) => env(var).map(Some).ok_or_else(|| format!("secret_env: `{var}` is not set")),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err("give exactly one of `secret` and `secret_env`".into()),
    }
}

/// Checked items with unique names (`kind` names them in the error).
fn unique<T>(
    items: impl Iterator<Item = Result<T, SettingsError>>,
    name: fn(&T) -> &str,
    kind: &str,
) -> Result<Vec<T>, SettingsError> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        let item = item?;
        if out.iter().any(|o| name(o) == name(&item)) {
            return Err(SettingsError(format!("{kind} `{}` is configured twice", name(&item))));
        }
        out.push(item);
    }
    Ok(out)
}

impl WebhookSettings {
    /// The endpoint these settings describe, with the secret read from the environment when
    /// `secret_env` names it. Every problem names the webhook and the field.
    pub fn endpoint(&self, env: impl Fn(&str) -> Option<String>) -> Result<kanta_webhooks::Endpoint, SettingsError> {
        let name = &self.name;
        let fail = |what: String| SettingsError(format!("webhook `{name}`: {what}"));
        let secret = secret_value(&self.secret, &self.secret_env, &env)
            .map_err(fail)?
            .ok_or_else(|| fail("give exactly one of `secret` and `secret_env`".into()))?;
        let secret = kanta_webhooks::SigningSecret::parse(&secret).map_err(|e| fail(e.to_string()))?;
        let events = self
            .events
            .iter()
            .map(|e| kanta_webhooks::EventType::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("events: {e}")))?;
        if let Some(stages) = &self.stages {
            let known = kanta_core::lifecycle::Stage::ALL.map(|s| s.name());
            if let Some(bad) = stages.iter().find(|s| !known.contains(&s.as_str())) {
                return Err(fail(format!("stages: unknown stage `{bad}`: use {}", known.join(", "))));
            }
        }
        let duration = |field: &str, every: Every| every.0.ok_or_else(|| fail(format!("{field} cannot be `off`")));
        let policy = kanta_webhooks::Policy {
            timeout: duration("timeout", self.timeout)?,
            max_attempts: self.max_attempts,
            backoff: duration("backoff", self.backoff)?,
            backoff_max: duration("backoff_max", self.backoff_max)?,
            pause_after: self.pause_after,
            poll: duration("poll", self.poll)?,
            allow_private: self.allow_private,
        };
        let subscription =
            kanta_webhooks::Subscription { events, segments: self.segments.clone(), stages: self.stages.clone() };
        kanta_webhooks::Endpoint::new(name, self.url.expose(), secret, subscription, policy)
            .map_err(|e| SettingsError(e.to_string()))
    }
}

impl Settings {
    /// Every configured inbound hook, checked; names must be unique.
    pub fn inbound_hooks(&self) -> Result<Vec<kanta_api::InboundHook>, SettingsError> {
        let env = |var: &str| std::env::var(var).ok();
        unique(self.inbound.iter().map(|i| i.hook(env)), |h| &h.name, "inbound hook")
    }

    /// `[email]` checked (the unsubscribe secret read from its variable), or `None` without an
    /// `[email]` table: journeys then record what they would send.
    pub fn email_config(&self) -> Result<Option<kanta_mail::EmailConfig>, SettingsError> {
        let env = |var: &str| std::env::var(var).ok();
        self.email.as_ref().map(|e| e.check(env).map_err(|e| SettingsError(e.to_string()))).transpose()
    }

    /// The journey engine's configuration as worker `owner`: the guardrails, the default zone,
    /// the email settings, the tick, the event age limit, and the webhook endpoints journeys'
    /// `webhook: { endpoint: NAME }` steps may name.
    pub fn engine_config(&self, owner: &str) -> Result<kanta_engine::EngineConfig, SettingsError> {
        let mut config = kanta_engine::EngineConfig::new(owner);
        let g = &self.guardrails;
        config.guardrails = kanta_journey::Guardrails {
            consent: g.consent.value,
            cap: g.frequency_cap.value,
            quiet: g.quiet_hours.value,
        };
        config.global_holdout = g.global_holdout.value;
        config.default_zone = Some(self.journeys.default_timezone.value);
        config.email = self.email_config()?;
        config.tick = self.journeys.tick()?;
        config.max_event_age = self.journeys.max_event_age.0;
        let lease = self.journeys.lease.0.ok_or_else(|| SettingsError("[journeys] lease cannot be `off`".into()))?;
        (config.run_lease, config.message_lease) = (lease, lease);
        config.webhooks = self
            .webhook_endpoints()?
            .into_iter()
            .map(|e| kanta_engine::WebhookEndpoint {
                name: e.name,
                url: e.url.to_string(),
                secret: e.secret.expose().to_vec(),
            })
            .collect();
        let env = |var: &str| std::env::var(var).ok();
        let fail = |what: String| SettingsError(format!("[journeys] webhook_secret: {what}"));
        config.webhook_secret =
            match secret_value(&self.journeys.webhook_secret, &self.journeys.webhook_secret_env, &env).map_err(fail)? {
                Some(text) => Some(
                    kanta_webhooks::SigningSecret::parse(&text).map_err(|e| fail(e.to_string()))?.expose().to_vec(),
                ),
                None => None,
            };
        Ok(config)
    }

    /// Every configured webhook endpoint, checked; names must be unique.
    pub fn webhook_endpoints(&self) -> Result<Vec<kanta_webhooks::Endpoint>, SettingsError> {
        let env = |var: &str| std::env::var(var).ok();
        unique(self.webhooks.iter().map(|w| w.endpoint(env)), |e| &e.name, "webhook")
    }
}

/// `[scoring]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scoring {
    /// Interval of the scheduled run in `kanta serve`.
    pub every: Every,
    /// Transaction model.
    pub model: ModelKind,
    /// P(alive) threshold for `slipping`.
    pub slipping_below: f64,
    /// Longest a scheduled run may take before it is cancelled.
    pub budget: Every,
    /// Push the scoring down into a PostgreSQL store.
    pub push_down: bool,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            every: Every(Some(Duration::from_secs(3600))),
            model: ModelKind::Auto,
            slipping_below: 0.5,
            budget: Every(Some(Duration::from_secs(1800))),
            push_down: true,
        }
    }
}

impl Scoring {
    /// The scoring job these settings describe.
    pub fn job(&self) -> kanta_jobs::ScoreJob {
        let mut job = kanta_jobs::ScoreJob::default();
        job.score.model = self.model;
        job.score.slipping_below = self.slipping_below;
        job.in_memory = !self.push_down;
        job
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// No earlier time is accepted (RFC 3339).
    pub earliest_time: Instant,
    /// How far ahead of the clock a time may be.
    pub max_ahead: Every,
}

impl Default for Ingest {
    fn default() -> Self {
        let bounds = TimeBounds::default();
        Ingest { earliest_time: Instant(bounds.earliest), max_ahead: Every(bounds.max_ahead) }
    }
}

impl Ingest {
    /// The bounds on ingested times.
    pub fn bounds(&self) -> TimeBounds {
        TimeBounds { earliest: self.earliest_time.0, max_ahead: self.max_ahead.0 }
    }
}

/// `[guardrails]`: each value checked when the file is read, by `kanta-journey`'s own parsers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guardrails {
    /// `opt-in` or `opt-out`.
    pub consent: Checked<kanta_journey::ConsentMode>,
    /// `HH:MM-HH:MM` or `off`.
    pub quiet_hours: Checked<kanta_journey::QuietHours>,
    /// `N/WINDOW` or `off`.
    pub frequency_cap: Checked<kanta_journey::FrequencyCap>,
    /// Soft bounces that suppress an address.
    pub soft_bounce_limit: u32,
    /// A share of customers kept out of every marketing journey (`5%`; `0%` for none).
    pub global_holdout: Checked<kanta_journey::Holdout>,
}

impl Default for Guardrails {
    fn default() -> Self {
        fn checked<T: ParseSetting>(text: &str) -> Checked<T> {
            Checked::parse(text).unwrap_or_else(|e| unreachable!("a built-in default: {e}"))
        }
        Guardrails {
            consent: checked("opt-in"),
            quiet_hours: checked("21:00-08:00"),
            frequency_cap: checked("3/7d"),
            soft_bounce_limit: kanta_api::DEFAULT_SOFT_BOUNCE_LIMIT,
            global_holdout: checked("0%"),
        }
    }
}

/// `[journeys]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Journeys {
    /// Whether `kanta serve` runs journeys.
    pub enabled: bool,
    /// How often the engine looks for due work.
    pub tick: Every,
    /// The zone of customers and journeys without one.
    pub default_timezone: Checked<chrono_tz::Tz>,
    /// Older orders, events and transitions start no journey; `off`: no limit.
    pub max_event_age: Every,
    /// How long a claimed run or message is held.
    pub lease: Every,
    /// Signs `webhook: { url: … }` steps' calls (endpoints' steps use the endpoint's secret)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<HiddenSecret>,
    /// …or the environment variable that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_env: Option<String>,
}

impl Default for Journeys {
    fn default() -> Self {
        Journeys {
            enabled: true,
            tick: Every(Some(Duration::from_secs(1))),
            default_timezone: Checked { text: "UTC".into(), value: chrono_tz::Tz::UTC },
            max_event_age: Every(Some(Duration::from_secs(24 * 3600))),
            lease: Every(Some(Duration::from_secs(300))),
            webhook_secret: None,
            webhook_secret_env: None,
        }
    }
}

impl Journeys {
    /// The engine's tick; `off` is refused (say `enabled = false`).
    pub fn tick(&self) -> Result<Duration, SettingsError> {
        self.tick.0.ok_or_else(|| {
            SettingsError("[journeys] tick cannot be `off`: set `enabled = false` to stop journeys".into())
        })
    }
}

/// `[dashboard]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dashboard {
    /// Whether `kanta serve` shows the dashboard.
    pub enabled: bool,
    /// How numbers and money are written (checked when the file is read).
    pub locale: Checked<kanta_report::format::NumberFormat>,
    /// The currency code shown with amounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// How long a login lasts.
    pub session: Every,
    /// `auto`, `always` or `never`.
    pub secure_cookies: Checked<SecureCookies>,
}

/// When session cookies are marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// Over HTTPS (seen through `X-Forwarded-Proto`, or an `https://` public URL).
    Auto,
    /// Always (the dashboard is only reached over HTTPS).
    Always,
    /// Never (plain HTTP on a trusted network).
    Never,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            enabled: true,
            locale: Checked::parse("en").unwrap_or_else(|e| unreachable!("a built-in default: {e}")),
            currency: None,
            session: Every(Some(Duration::from_secs(12 * 3600))),
            secure_cookies: Checked { text: "auto".into(), value: SecureCookies::Auto },
        }
    }
}

impl ParseSetting for kanta_report::format::NumberFormat {
    fn parse_setting(text: &str) -> Result<Self, String> {
        kanta_report::format::NumberFormat::new(text, None).map_err(|e| format!("[dashboard] {e}"))
    }
}

impl ParseSetting for SecureCookies {
    fn parse_setting(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(SecureCookies::Auto),
            "always" => Ok(SecureCookies::Always),
            "never" => Ok(SecureCookies::Never),
            other => Err(format!("[dashboard] secure_cookies `{other}` must be auto, always or never")),
        }
    }
}

impl Dashboard {
    /// The dashboard's configuration; `public_url` is `[email] public_url`, when set.
    pub fn web_config(&self, public_url: Option<&str>) -> Result<kanta_web::WebConfig, SettingsError> {
        let session =
            self.session.0.filter(|d| !d.is_zero()).ok_or_else(|| {
                SettingsError("[dashboard] session must be a duration such as \"12h\", not off".into())
            })?;
        let currency = match self.currency.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => Some(c),
            Some(c) => {
                return Err(SettingsError(format!(
                    "[dashboard] currency `{c}` must be a three-letter ISO 4217 code such as EUR"
                )));
            }
        };
        let format = kanta_report::format::NumberFormat::new(self.locale.value.locale(), currency)
            .map_err(|e| SettingsError(format!("[dashboard] {e}")))?;
        Ok(kanta_web::WebConfig {
            session,
            format,
            secure_cookies: match self.secure_cookies.value {
                SecureCookies::Auto => None,
                SecureCookies::Always => Some(true),
                SecureCookies::Never => Some(false),
            },
            public_url: public_url.map(str::to_owned),
            settings_text: String::new(),
        })
    }
}

/// A setting kept as written (for `kanta config show`) with its parsed value; a value that does
/// not parse is an error naming it when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T> {
    /// As written.
    pub text: String,
    /// Parsed.
    pub value: T,
}

/// What a [`Checked`] setting parses with.
pub trait ParseSetting: Sized {
    /// The value of `text`, or a message naming it and the accepted forms.
    fn parse_setting(text: &str) -> Result<Self, String>;
}

impl ParseSetting for kanta_journey::ConsentMode {
    fn parse_setting(text: &str) -> Result<Self, String> {
        kanta_journey::ConsentMode::parse(text).map_err(|e| e.to_string())
    }
}

impl ParseSetting for kanta_journey::QuietHours {
    fn parse_setting(text: &str) -> Result<Self, String> {
        kanta_journey::QuietHours::parse(text).map_err(|e| e.to_string())
    }
}

impl ParseSetting for kanta_journey::Holdout {
    fn parse_setting(text: &str) -> Result<Self, String> {
        match kanta_journey::Holdout::parse(text) {
            Ok(h) if h.parts_per_million() >= 1_000_000 => Err(format!(
                "global_holdout `{text}` would keep every customer out of every journey: use less than 100%"
            )),
            Ok(h) => Ok(h),
            Err(e) => Err(format!("global_{e}")),
        }
    }
}

impl ParseSetting for kanta_journey::FrequencyCap {
    fn parse_setting(text: &str) -> Result<Self, String> {
        kanta_journey::FrequencyCap::parse(text).map_err(|e| e.to_string())
    }
}

impl ParseSetting for chrono_tz::Tz {
    fn parse_setting(text: &str) -> Result<Self, String> {
        kanta_journey::parse_zone(text).map_err(|e| format!("default_timezone: {e}"))
    }
}

impl<T: ParseSetting> Checked<T> {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Checked<T>, String> {
        T::parse_setting(text).map(|value| Checked { text: text.to_owned(), value })
    }
}

impl<T> Serialize for Checked<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, T: ParseSetting> Deserialize<'de> for Checked<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked<T>, D::Error> {
        let text = String::deserialize(d)?;
        Checked::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An instant written as RFC 3339 with a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub Timestamp);

impl Serialize for Instant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map(Instant).map_err(|_| {
            serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time with a zone, e.g. 1970-01-01T00:00:00Z"))
        })
    }
}

/// An interval such as `30m`, `6h`, `1d` or `90s`, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

impl Every {
    /// Parse `off` or a positive whole number followed by `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<Every, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(Every(None));
        }
        let unit = match text.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(format!("`{text}` is not an interval: write e.g. 30m, 6h, 1d or off")),
        };
        let digits = &text[..text.len() - 1];
        match digits.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Every(Some(Duration::from_secs(n.saturating_mul(unit))))),
            _ => Err(format!("`{text}` is not an interval: write a positive whole number and s, m, h or d (or off)")),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else { return f.write_str("off") };
        let s = d.as_secs();
        match s {
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Every {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Every, D::Error> {
        let text = String::deserialize(d)?;
        Every::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// The store's URL.
    pub url: DatabaseUrl,
    /// How long to retry an unreachable server.
    pub connect_timeout: Every,
}

impl Default for Database {
    fn default() -> Self {
        Database { url: DatabaseUrl("sqlite://kanta.db".into()), connect_timeout: Every(Some(Duration::from_secs(30))) }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Listening address.
    pub listen: String,
    /// Grace period for in-flight requests at shutdown.
    pub grace_seconds: u64,
    /// Time for a request's headers (and the idle time of a keep-alive connection).
    pub header_timeout: Every,
    /// Time for a request's body.
    pub body_timeout: Every,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Server {
    fn default() -> Self {
        let limits = kanta_api::HttpLimits::default();
        Server {
            listen: "127.0.0.1:8080".into(),
            grace_seconds: 30,
            header_timeout: Every(Some(limits.header_timeout)),
            body_timeout: Every(Some(limits.body_timeout)),
            max_connections: limits.max_connections,
        }
    }
}

impl Server {
    /// The HTTP limits these settings describe; `off` is refused (a timeout that never fires is
    /// what let slow clients hold the server).
    pub fn http_limits(&self) -> Result<kanta_api::HttpLimits, SettingsError> {
        let timeout = |name: &str, every: Every| {
            every.0.ok_or_else(|| {
                SettingsError(format!("[server] {name} cannot be `off`: slow clients would hold connections"))
            })
        };
        if self.max_connections == 0 {
            return Err(SettingsError("[server] max_connections must be at least 1".into()));
        }
        Ok(kanta_api::HttpLimits {
            header_timeout: timeout("header_timeout", self.header_timeout)?,
            body_timeout: timeout("body_timeout", self.body_timeout)?,
            max_connections: self.max_connections,
        })
    }
}

/// A database URL; shown with its password replaced by `***`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A URL from text.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", kanta_store::redact(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kanta_store::redact(&self.0))
    }
}

/// The settings file to read: `--config`/`KANTA_CONFIG` (which must exist), else
/// `./kanta.toml` if present.
fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("kanta.toml")).filter(|p| p.is_file()),
    }
}

/// Defaults overlaid with the settings file.
pub fn load(explicit: Option<&Path>) -> Result<Settings, SettingsError> {
    let Some(path) = config_path(explicit) else { return Ok(Settings::default()) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| SettingsError(format!("cannot read the settings file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| SettingsError(format!("{}: {e}", path.display())))
}

/// Settings from TOML text (absent keys keep their defaults; unknown keys are errors).
pub fn parse(text: &str) -> Result<Settings, String> {
    // toml's message names the line and column and quotes the offending text.
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// The settings as TOML with the database password, secrets and credentials in webhook URLs
/// hidden (`kanta config show`).
pub fn show(settings: &Settings) -> String {
    let mut shown = settings.clone();
    shown.database.url = DatabaseUrl(kanta_store::redact(settings.database.url.expose()));
    toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render the settings: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_example_is_the_defaults() {
        assert_eq!(parse(DEFAULT_TOML), Ok(Settings::default()));
    }

    #[test]
    fn guardrails_and_journeys_parse_and_bad_values_name_the_key_and_value() {
        let d = Settings::default();
        assert_eq!(d.guardrails.consent.value, kanta_journey::ConsentMode::OptIn);
        assert_eq!(d.guardrails.quiet_hours.value, kanta_journey::QuietHours::parse("21:00-08:00").expect("valid"));
        assert_eq!(d.guardrails.frequency_cap.value, kanta_journey::FrequencyCap::parse("3/7d").expect("valid"));
        assert_eq!((d.guardrails.soft_bounce_limit, d.journeys.enabled), (3, true));
        assert_eq!(d.guardrails.global_holdout.value, kanta_journey::Holdout::NONE);
        assert_eq!(
            (d.journeys.tick().expect("valid"), d.journeys.default_timezone.value),
            (Duration::from_secs(1), chrono_tz::Tz::UTC)
        );
        assert_eq!(d.email, None);
        let s = parse(
            "[guardrails]\nconsent = \"opt-out\"\nquiet_hours = \"off\"\nfrequency_cap = \"off\"\n\
             soft_bounce_limit = 5\nglobal_holdout = \"2.5%\"\n[journeys]\ntick = \"5s\"\n\
             default_timezone = \"Europe/Helsinki\"\n",
        )
        .expect("valid");
        assert_eq!(s.guardrails.consent.value, kanta_journey::ConsentMode::OptOut);
        assert_eq!(s.guardrails.quiet_hours.value, kanta_journey::QuietHours::Off);
        assert_eq!(s.guardrails.frequency_cap.value, kanta_journey::FrequencyCap::Off);
        assert_eq!(s.guardrails.global_holdout.value.parts_per_million(), 25_000);
        assert_eq!(s.engine_config("w").expect("valid").global_holdout.parts_per_million(), 25_000);
        assert_eq!(s.journeys.default_timezone.value, chrono_tz::Tz::Europe__Helsinki);
        let shown = show(&s);
        assert!(
            shown.contains("quiet_hours = \"off\"") && shown.contains("default_timezone = \"Europe/Helsinki\""),
            "{shown}"
        );
        for (text, expected) in [
            ("[guardrails]\nconsent = \"maybe\"\n", "consent `maybe`"),
            ("[guardrails]\nquiet_hours = \"21-08\"\n", "quiet_hours `21-08`"),
            ("[guardrails]\nfrequency_cap = \"lots\"\n", "frequency_cap `lots`"),
            ("[guardrails]\nglobal_holdout = \"5\"\n", "global_holdout `5` must be a percentage"),
            ("[guardrails]\nglobal_holdout = \"100%\"\n", "global_holdout `100%` would keep every customer out"),
            ("[journeys]\ndefault_timezone = \"Mars/Olympus\"\n", "Mars/Olympus"),
            ("[journeys]\ntick = \"soon\"\n", "soon"),
        ] {
            let err = parse(text).expect_err(expected);
            assert!(err.contains("line 2") && err.contains(expected), "{text}: {err}");
        }
        let off = parse("[journeys]\ntick = \"off\"\n").expect("parses");
        assert!(off.journeys.tick().expect_err("off").0.contains("enabled = false"));
    }

    #[test]
    fn email_is_optional_checked_as_a_whole_and_its_secrets_are_masked() {
        assert!(Settings::default().email_config().expect("no [email] is fine").is_none());
        let text = "[email]\nsmtp_url = \"smtp://kanta:hunter2@127.0.0.1:2525\"\nfrom = \"Shop <hello@shop.example>\"\n\
                    unsubscribe_secret = \"0123456789abcdef-secret\"\n";
        let s = parse(text).expect("valid");
        let config = s.email_config().expect("valid").expect("configured");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        for shown in [show(&s), format!("{s:?}")] {
            assert!(!shown.contains("hunter2") && !shown.contains("0123456789abcdef-secret"), "{shown}");
        }
        let missing = parse("[email]\nfrom = \"Shop <hello@shop.example>\"\n").expect("parses");
        let err = missing.email_config().expect_err("no secret").0;
        assert!(err.contains("[email] unsubscribe_secret"), "{err}");
    }

    #[test]
    fn a_file_overrides_only_what_it_names_and_rejects_unknown_keys() {
        let s = parse("[server]\nlisten = \"0.0.0.0:9000\"\n").expect("valid");
        assert_eq!(s.server.listen, "0.0.0.0:9000");
        assert_eq!(s.server.grace_seconds, 30);
        assert_eq!(s.database, Database::default());
        let err = parse("[server]\nlisen = \"x\"\n").expect_err("unknown key");
        assert!(err.contains("line 2") && err.contains("lisen"), "{err}");
        let err = parse("[server]\ngrace_seconds = \"soon\"\n").expect_err("wrong type");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn http_limits_default_safely_and_refuse_off() {
        assert_eq!(Settings::default().server.http_limits().expect("valid"), kanta_api::HttpLimits::default());
        let s =
            parse("[server]\nheader_timeout = \"5s\"\nbody_timeout = \"2m\"\nmax_connections = 64\n").expect("valid");
        let limits = s.server.http_limits().expect("valid");
        assert_eq!(
            (limits.header_timeout.as_secs(), limits.body_timeout.as_secs(), limits.max_connections),
            (5, 120, 64)
        );
        let off = parse("[server]\nheader_timeout = \"off\"\n").expect("parses");
        let err = off.server.http_limits().expect_err("off is refused");
        assert_eq!(err.0, "[server] header_timeout cannot be `off`: slow clients would hold connections");
        assert!(parse("[server]\nmax_connections = 0\n").expect("parses").server.http_limits().is_err());
    }

    #[test]
    fn ingest_bounds_default_to_1970_and_a_day_ahead_and_can_be_changed() {
        let defaults = Settings::default().ingest.bounds();
        assert_eq!(defaults, TimeBounds { earliest: Timestamp::EPOCH, max_ahead: Some(Duration::from_secs(86_400)) });
        let s = parse("[ingest]\nearliest_time = \"2000-01-01T00:00:00+02:00\"\nmax_ahead = \"off\"\n").expect("valid");
        assert_eq!(s.ingest.bounds().earliest.micros(), 946_677_600_000_000);
        assert_eq!(s.ingest.bounds().max_ahead, None);
        let err = parse("[ingest]\nearliest_time = \"2000-01-01\"\n").expect_err("a date is not an instant");
        assert!(err.contains("line 2") && err.contains("`2000-01-01` is not an RFC 3339 time"), "{err}");
        assert!(show(&s).contains("earliest_time = \"1999-12-31T22:00:00Z\""), "{}", show(&s));
    }

    #[test]
    fn intervals_parse_print_and_refuse_nonsense() {
        assert_eq!(Every::parse("30m"), Ok(Every(Some(Duration::from_secs(1800)))));
        assert_eq!(Every::parse("1d").map(|e| e.to_string()), Ok("1d".to_owned()));
        assert_eq!(Every::parse("90s").map(|e| e.to_string()), Ok("90s".to_owned()));
        assert_eq!(Every::parse("120m").map(|e| e.to_string()), Ok("2h".to_owned()));
        assert_eq!(Every::parse("off"), Ok(Every(None)));
        for bad in ["", "0h", "h", "1.5h", "-1h", "10", "1w"] {
            assert!(Every::parse(bad).is_err(), "{bad}");
        }
        let err = parse("[scoring]\nevery = \"soon\"\n").expect_err("bad interval");
        assert!(err.contains("line 2") && err.contains("soon"), "{err}");
        let s = parse("[scoring]\nevery = \"off\"\nmodel = \"paretonbd\"\n").expect("valid");
        assert_eq!((s.scoring.every, s.scoring.model), (Every(None), ModelKind::ParetoNbd));
    }

    #[test]
    fn passwords_never_show_in_debug_display_or_show() {
        let s = Settings {
            database: Database { url: DatabaseUrl::new("postgres://kanta:hunter2@db/kanta"), ..Database::default() },
            server: Server::default(),
            scoring: Scoring::default(),
            ingest: Ingest::default(),
            webhooks: Vec::new(),
            inbound: Vec::new(),
            ..Settings::default()
        };
        for text in [format!("{s:?}"), format!("{}", s.database.url), show(&s)] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("postgres://kanta:***@db/kanta"), "{text}");
        }
        assert_eq!(s.database.url.expose(), "postgres://kanta:hunter2@db/kanta");
    }

    const HOOK: &str = "[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/k\"\n";

    #[test]
    fn webhooks_parse_with_policy_defaults_and_hide_their_secret() {
        let text = format!(
            "{HOOK}secret = \"s3cret-s3cret-s3cret\"\nevents = [\"segment.entered\"]\nsegments = [\"vip\"]\n\
             stages = [\"slipping\"]\nbackoff = \"10s\"\n\n[[webhooks]]\nname = \"ops\"\nurl = \"http://10.0.0.5:8080/\"\n\
             secret_env = \"OPS_SECRET\"\nallow_private = true\n"
        );
        let s = parse(&text).expect("valid settings");
        let crm = s.webhooks[0].endpoint(|_| None).expect("a valid endpoint");
        assert_eq!((crm.name.as_str(), crm.url.as_str()), ("crm", "https://crm.example.com/k"));
        assert_eq!(crm.subscription.events, [kanta_webhooks::EventType::SegmentEntered]);
        assert_eq!(crm.subscription.segments.as_deref(), Some(&["vip".to_string()][..]));
        assert_eq!(crm.subscription.stages.as_deref(), Some(&["slipping".to_string()][..]));
        assert_eq!(crm.secret.expose(), b"s3cret-s3cret-s3cret");
        let p = crm.policy;
        assert_eq!((p.backoff.as_secs(), p.backoff_max.as_secs(), p.timeout.as_secs()), (10, 3600, 10));
        assert_eq!((p.max_attempts, p.pause_after, p.poll.as_secs()), (8, 20, 5));
        let ops = s.webhooks[1].endpoint(|var| (var == "OPS_SECRET").then(|| "from-the-environment".to_string()));
        let ops = ops.expect("valid");
        assert_eq!(ops.secret.expose(), b"from-the-environment");
        assert_eq!((crm.policy.allow_private, ops.policy.allow_private), (false, true));
        assert_eq!(s.webhooks[1].events.len(), 3, "every event by default");
        for text in [format!("{s:?}"), show(&s)] {
            assert!(!text.contains("s3cret"), "{text}");
        }
        assert!(show(&s).contains("secret = \"***\""), "{}", show(&s));
        let with_credentials = text.replace(
            "https://crm.example.com/k",
            "https://kanta:hunter2@crm.example.com/k?api_key=k-123&Token=t-456&region=eu",
        );
        let s = parse(&with_credentials).expect("valid settings");
        let masked = "https://kanta:***@crm.example.com/k?api_key=***&Token=***&region=eu";
        for text in [format!("{s:?}"), show(&s), s.webhooks[0].url.to_string()] {
            assert!(!text.contains("hunter2") && !text.contains("k-123") && !text.contains("t-456"), "{text}");
            assert!(text.contains(masked), "{text}");
        }
        let crm = s.webhooks[0].endpoint(|_| None).expect("a valid endpoint");
        assert_eq!(crm.url.as_str(), "https://kanta:hunter2@crm.example.com/k?api_key=k-123&Token=t-456&region=eu");
    }

    #[test]
    fn bad_webhooks_name_the_webhook_the_field_and_the_value() {
        let secret = "secret = \"0123456789abcdef\"\n";
        let cases = [
            (HOOK.to_string(), "give exactly one of `secret` and `secret_env`"),
            (format!("{HOOK}{secret}secret_env = \"X\"\n"), "give exactly one"),
            (format!("{HOOK}secret_env = \"NOT_SET_ANYWHERE\"\n"), "`NOT_SET_ANYWHERE` is not set"),
            (format!("{HOOK}secret = \"short\"\n"), "at least 16 characters"),
            (format!("{HOOK}{secret}events = [\"order.created\"]\n"), "unknown event `order.created`"),
            (format!("{HOOK}{secret}stages = [\"churned\"]\n"), "unknown stage `churned`"),
            (format!("{HOOK}{secret}timeout = \"off\"\n"), "timeout cannot be `off`"),
            (format!("{HOOK}{secret}max_attempts = 0\n"), "at least 1"),
            (format!("{HOOK}{secret}events = []\n"), "`events` is empty"),
            (format!("[[webhooks]]\nname = \"crm\"\nurl = \"ftp://x.example\"\n{secret}"), "ftp://x.example"),
            (format!("{HOOK}{secret}{HOOK}{secret}"), "configured twice"),
            (
                format!("[[webhooks]]\nname = \"crm\"\nurl = \"http://169.254.169.254/latest/\"\n{secret}"),
                "url `http://169.254.169.254/latest/`: 169.254.169.254 is link-local; webhooks reach private and \
                 link-local addresses only with allow_private = true",
            ),
            (
                format!("[[webhooks]]\nname = \"crm\"\nurl = \"https://[fd00::5]/h\"\n{secret}allow_private = false\n"),
                "fd00::5 is private (unique local)",
            ),
        ];
        for (text, expected) in cases {
            let settings = parse(&text).expect("parses");
            let err = settings.webhook_endpoints().expect_err(expected).0;
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("crm"), "{err}");
        }
        let err = parse(&format!("{HOOK}{secret}retries = 3\n")).expect_err("unknown key");
        assert!(err.contains("retries"), "{err}");
        let err = parse(&format!("{HOOK}{secret}backoff = \"soon\"\n")).expect_err("bad interval");
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn inbound_hooks_parse_and_bad_ones_name_the_hook() {
        let text = "[[inbound]]\nname = \"crm\"\nauth = \"hmac-sha256\"\nsecret = \"0123456789abcdef\"\n\
                    signature_header = \"X-Signature-256\"\nrecords = \"contacts\"\n[inbound.fields]\nid = \"vid\"\n\
                    email = \"properties.email.value\"\n";
        let s = parse(text).expect("valid settings");
        let hooks = s.inbound_hooks().expect("valid hooks");
        assert_eq!((hooks[0].name.as_str(), hooks[0].records.as_deref()), ("crm", Some("contacts")));
        assert!(matches!(
            &hooks[0].auth,
            kanta_api::InboundAuth::HmacSha256 { header, timestamp_header, .. }
                if header == "x-signature-256" && timestamp_header == "x-kanta-timestamp"
        ));
        let custom = parse(&text.replace("records =", "timestamp_header = \"X-CRM-Time\"\nrecords ="))
            .expect("valid settings")
            .inbound_hooks()
            .expect("valid hooks");
        assert!(matches!(
            &custom[0].auth,
            kanta_api::InboundAuth::HmacSha256 { timestamp_header, .. } if timestamp_header == "x-crm-time"
        ));
        assert!(!show(&s).contains("0123456789abcdef"), "{}", show(&s));
        let base = "[[inbound]]\nname = \"crm\"\n";
        let cases = [
            (format!("{base}[inbound.fields]\nid = \"vid\"\n"), None),
            (format!("{base}auth = \"basic\"\n[inbound.fields]\nid = \"vid\"\n"), Some("auth `basic`")),
            (
                format!("{base}auth = \"hmac-sha256\"\nsecret = \"0123456789abcdef\"\n[inbound.fields]\nid = \"v\"\n"),
                Some("signature_header"),
            ),
            (format!("{base}auth = \"kanta-signature\"\n[inbound.fields]\nid = \"v\"\n"), Some("exactly one of")),
            (format!("{base}secret = \"0123456789abcdef\"\n[inbound.fields]\nid = \"v\"\n"), Some("takes no secret")),
            (format!("{base}[inbound.fields]\nemail = \"e\"\n"), Some("must map `id`")),
            (format!("{base}[inbound.fields]\nid = \"v\"\nshoe = \"s\"\n"), Some("unknown field `shoe`")),
            (
                format!("{base}auth = \"token\"\ntimestamp_header = \"X-T\"\n[inbound.fields]\nid = \"v\"\n"),
                Some("`timestamp_header` applies to auth `hmac-sha256` only"),
            ),
            (
                format!(
                    "{base}auth = \"hmac-sha256\"\nsecret = \"0123456789abcdef\"\nsignature_header = \"X-S\"\n\
                     timestamp_header = \"x-s\"\n[inbound.fields]\nid = \"v\"\n"
                ),
                Some("must be different headers"),
            ),
            (
                format!(
                    "{base}auth = \"hmac-sha256\"\nsecret = \"0123456789abcdef\"\nsignature_header = \"X-S\"\n\
                     timestamp_header = \"X T\"\n[inbound.fields]\nid = \"v\"\n"
                ),
                Some("`x t` is not a header name"),
            ),
        ];
        for (text, expected) in cases {
            let result = parse(&text).expect("parses").inbound_hooks();
            match expected {
                None => assert!(result.is_ok(), "{text}"),
                Some(e) => {
                    let err = result.expect_err(e).0;
                    assert!(err.contains(e) && err.contains("crm"), "{text}: {err}");
                }
            }
        }
    }
}
