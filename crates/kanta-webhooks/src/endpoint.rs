//! A configured endpoint: where to send, what to send, and how hard to try.
//!
//! Endpoints come only from the configuration (`[[webhooks]]` in `kanta.toml`); nothing the API
//! or the data says can add an address. [`Endpoint::new`] checks what the configuration gives.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// The kinds of event an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A scoring run moved a customer to another lifecycle stage.
    StageChanged,
    /// A customer entered a saved segment.
    SegmentEntered,
    /// A customer left a saved segment.
    SegmentExited,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 3] = [EventType::StageChanged, EventType::SegmentEntered, EventType::SegmentExited];

    /// The name in payloads and in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::StageChanged => "customer.stage_changed",
            EventType::SegmentEntered => "segment.entered",
            EventType::SegmentExited => "segment.exited",
        }
    }

    /// An event type from its name.
    pub fn parse(text: &str) -> Result<EventType, EndpointError> {
        EventType::ALL.into_iter().find(|e| e.as_str() == text).ok_or_else(|| {
            EndpointError(format!(
                "unknown event `{text}`: use {}",
                EventType::ALL.map(|e| format!("`{}`", e.as_str())).join(", ")
            ))
        })
    }
}

/// A configuration problem, naming the field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

/// Which events an endpoint gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Event types.
    pub events: Vec<EventType>,
    /// Segment events only of these segments (by name); `None` = every segment.
    pub segments: Option<Vec<String>>,
    /// Stage changes only into these stages; `None` = every stage.
    pub stages: Option<Vec<String>>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription { events: EventType::ALL.to_vec(), segments: None, stages: None }
    }
}

/// How deliveries are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Longest wait for the endpoint's answer (connection included).
    pub timeout: Duration,
    /// Attempts per delivery before it is given up (`failed`).
    pub max_attempts: u32,
    /// Wait after the first failure; doubles with every consecutive failure…
    pub backoff: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// Consecutive failed attempts after which the endpoint is paused until resumed.
    pub pause_after: u32,
    /// How often the endpoint looks for new events when idle.
    pub poll: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            pause_after: 20,
            poll: Duration::from_secs(5),
        }
    }
}

impl Policy {
    /// The wait after `failures` consecutive failures: `backoff · 2^(failures−1)`, at most
    /// `backoff_max`.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(self.backoff_max)
    }
}

/// The HMAC key; its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// Shortest accepted secret, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A secret of at least [`Self::MIN_LEN`] bytes.
    pub fn parse(text: &str) -> Result<SigningSecret, EndpointError> {
        if text.len() < Self::MIN_LEN {
            return Err(EndpointError(format!(
                "a webhook secret needs at least {} characters (this one has {})",
                Self::MIN_LEN,
                text.len()
            )));
        }
        Ok(SigningSecret(text.as_bytes().to_vec()))
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// A configured endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique name (the key of its state and delivery log).
    pub name: String,
    /// Where deliveries are POSTed; redirects are not followed.
    pub url: Url,
    /// Signing key.
    pub secret: SigningSecret,
    /// What it gets.
    pub subscription: Subscription,
    /// How hard to try.
    pub policy: Policy,
}

impl Endpoint {
    /// Check a configured endpoint: a name of 1–100 letters, digits, `-`, `_` or `.`; an
    /// `http` or `https` URL with a host; a secret of 16+ characters; sane limits.
    pub fn new(
        name: &str,
        url: &str,
        secret: SigningSecret,
        subscription: Subscription,
        policy: Policy,
    ) -> Result<Endpoint, EndpointError> {
        if name.is_empty()
            || name.len() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(EndpointError(format!(
                "webhook name `{}`: use 1–100 letters, digits, `-`, `_` or `.`",
                name.escape_debug()
            )));
        }
        let parsed = Url::parse(url).map_err(|e| EndpointError(format!("webhook `{name}`: url `{url}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError(format!(
                "webhook `{name}`: url `{url}` must be http:// or https:// with a host"
            )));
        }
        if subscription.events.is_empty() {
            return Err(EndpointError(format!("webhook `{name}`: `events` is empty; it would get nothing")));
        }
        if policy.max_attempts == 0 || policy.pause_after == 0 {
            return Err(EndpointError(format!("webhook `{name}`: max_attempts and pause_after must be at least 1")));
        }
        if policy.timeout.is_zero() || policy.poll.is_zero() {
            return Err(EndpointError(format!("webhook `{name}`: timeout and poll must be positive")));
        }
        Ok(Endpoint { name: name.to_string(), url: parsed, secret, subscription, policy })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SigningSecret {
        SigningSecret::parse("0123456789abcdef").expect("16 characters")
    }

    #[test]
    fn backoff_doubles_from_the_first_failure_up_to_the_cap() {
        let p =
            Policy { backoff: Duration::from_secs(30), backoff_max: Duration::from_secs(3600), ..Policy::default() };
        let delays: Vec<u64> = (1..=9).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.delay(10_000).as_secs(), 3600, "no overflow");
    }

    #[test]
    fn endpoints_need_a_name_an_http_url_a_long_secret_and_events() {
        let ok = Endpoint::new(
            "crm",
            "https://crm.example.com/hooks?x=1",
            secret(),
            Subscription::default(),
            Policy::default(),
        )
        .expect("valid");
        assert_eq!(ok.url.as_str(), "https://crm.example.com/hooks?x=1");
        assert!(!format!("{ok:?}").contains("0123456789abcdef"), "Debug hides the secret");
        let bad = [
            ("", "http://a.example"),
            ("crm team", "http://a.example"),
            ("crm", "ftp://a.example/x"),
            ("crm", "file:///etc/passwd"),
            ("crm", "not a url"),
            ("crm", "http://"),
        ];
        for (name, url) in bad {
            assert!(
                Endpoint::new(name, url, secret(), Subscription::default(), Policy::default()).is_err(),
                "{name} {url}"
            );
        }
        let none = Subscription { events: vec![], ..Subscription::default() };
        assert!(Endpoint::new("crm", "http://a.example", secret(), none, Policy::default()).is_err());
        let zero = Policy { max_attempts: 0, ..Policy::default() };
        assert!(Endpoint::new("crm", "http://a.example", secret(), Subscription::default(), zero).is_err());
        assert!(SigningSecret::parse("short").is_err());
        assert_eq!(EventType::parse("segment.entered"), Ok(EventType::SegmentEntered));
        let err = EventType::parse("segment.joined").expect_err("unknown");
        assert!(err.0.contains("`segment.joined`") && err.0.contains("`customer.stage_changed`"), "{err}");
    }
}
