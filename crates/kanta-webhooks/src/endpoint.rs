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
    /// May reach private, link-local and other non-global addresses
    /// ([`crate::destination`]); loopback is always allowed.
    pub allow_private: bool,
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
            allow_private: false,
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

/// A configured endpoint. Its `Debug` shows the URL masked ([`mask_url`]).
#[derive(Clone, PartialEq, Eq)]
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

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.masked_url())
            .field("secret", &self.secret)
            .field("subscription", &self.subscription)
            .field("policy", &self.policy)
            .finish()
    }
}

/// Whether a query key names a credential: compared case-insensitively, ignoring `-`, `_`
/// and other punctuation; `key`, `sig`, `code`, … and any key containing `token`, `secret`,
/// `passw`, `apikey`, `signature`, `credential`, `session` or `auth`, or ending in `key` or `sig`
/// (`api_key`, `hapikey`, `access_token`, `X-Amz-Signature`, `client_secret`, …).
pub fn is_secret_key(key: &str) -> bool {
    const EXACT: [&str; 7] = ["sig", "pass", "pwd", "pw", "code", "jwt", "hmac"];
    const PARTS: [&str; 8] = ["token", "secret", "passw", "apikey", "signature", "credential", "session", "auth"];
    let k: String = key.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    EXACT.contains(&k.as_str()) || PARTS.iter().any(|p| k.contains(p)) || k.ends_with("key") || k.ends_with("sig")
}

/// `url` for showing: a userinfo password (`user:***@`; a user name alone, often a token, as
/// `***@`) and the values of query and fragment parameters with secret-looking keys
/// ([`is_secret_key`]) replaced by `***`. Works on text, so an unparseable URL is masked too.
/// The real URL is what is sent to; this is for logs, listings and error messages.
pub fn mask_url(url: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (rest, None),
    };
    let mut out = mask_userinfo(base);
    for (mark, part) in [('?', query), ('#', fragment)] {
        if let Some(part) = part {
            out.push(mark);
            let pairs: Vec<String> = part
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
    }
    out
}

/// The URL's host when it is an IP address (the URL parser writes every IPv4 form, such as
/// `2130706433` or `0x7f.1`, as dotted decimal, and IPv6 in brackets).
pub fn literal_ip(url: &Url) -> Option<std::net::IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// `scheme://user:***@host/path` from `scheme://user:password@host/path` (no query).
fn mask_userinfo(base: &str) -> String {
    let Some(scheme_end) = base.find("://").map(|i| i + 3) else { return base.to_string() };
    let after = &base[scheme_end..];
    let authority = &after[..after.find('/').unwrap_or(after.len())];
    let Some(at) = authority.rfind('@') else { return base.to_string() };
    let masked = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if at == 0 => String::new(),
        None => "***".to_string(),
    };
    format!("{}{masked}{}", &base[..scheme_end], &after[at..])
}

impl Endpoint {
    /// The URL for showing, with credentials masked ([`mask_url`]).
    pub fn masked_url(&self) -> String {
        mask_url(self.url.as_str())
    }

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
        let shown = mask_url(url);
        let parsed = Url::parse(url).map_err(|e| EndpointError(format!("webhook `{name}`: url `{shown}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError(format!(
                "webhook `{name}`: url `{shown}` must be http:// or https:// with a host"
            )));
        }
        // A literal IP is checked here; names are checked as they resolve, at every connection.
        if let Some(why) = literal_ip(&parsed).and_then(|ip| crate::destination::check(ip, policy.allow_private)) {
            return Err(EndpointError(format!("webhook `{name}`: url `{shown}`: {why}")));
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
    fn literal_private_addresses_are_refused_unless_allowed() {
        let new = |url: &str, allow_private: bool| {
            Endpoint::new("ops", url, secret(), Subscription::default(), Policy { allow_private, ..Policy::default() })
        };
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5:8080/",
            "http://192.168.1.10/h",
            "http://[fe80::1]/h",
            "http://[::ffff:169.254.169.254]/h",
            "http://0.0.0.0:9/h",
            "http://2852039166/h",
            "http://0xa9.0xfe.0xa9.0xfe/h",
        ] {
            let err = new(url, false).expect_err(url);
            assert!(err.0.starts_with("webhook `ops`: url `"), "{err}");
            assert!(err.0.contains("allow_private = true"), "{err}");
            assert!(new(url, true).is_ok(), "{url} with allow_private");
        }
        let err = new("http://2852039166/h", false).expect_err("link-local");
        assert!(err.0.contains("169.254.169.254 is link-local"), "{err}");
        for url in ["http://127.0.0.1:9/h", "http://[::1]:9/h", "http://localhost:9/h", "https://crm.example.com/h"] {
            assert!(new(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        let cases = [
            ("https://crm.example.com/hooks/kanta", "https://crm.example.com/hooks/kanta"),
            ("https://user:hunter2@crm.example.com/h", "https://user:***@crm.example.com/h"),
            ("https://user:@crm.example.com/h", "https://user:***@crm.example.com/h"),
            ("https://ghp_tokentoken@crm.example.com/h", "https://***@crm.example.com/h"),
            ("https://a:b:c@d@crm.example.com:8443/", "https://a:***@crm.example.com:8443/"),
            (
                "https://crm.example.com/h?api_key=k1&apikey=k2&KEY=k3&Token=k4&secret=k5&password=k6",
                "https://crm.example.com/h?api_key=***&apikey=***&KEY=***&Token=***&secret=***&password=***",
            ),
            (
                "https://x.example/h?signature=s1&sig=s2&access_token=s3&hapikey=s4&X-Amz-Credential=s5&client-secret=s6",
                "https://x.example/h?signature=***&sig=***&access_token=***&hapikey=***&X-Amz-Credential=***&client-secret=***",
            ),
            ("https://x.example/h?page=2&event=all&key", "https://x.example/h?page=2&event=all&key"),
            (
                "https://x.example/h?id=1&auth=s#access_token=s7&x=1",
                "https://x.example/h?id=1&auth=***#access_token=***&x=1",
            ),
            ("https://x.example/mail@me?token=s8", "https://x.example/mail@me?token=***"),
            ("not a url?password=s9", "not a url?password=***"),
        ];
        for (url, shown) in cases {
            assert_eq!(mask_url(url), shown, "{url}");
        }
        for key in ["api_key", "API-KEY", "apiKey", "x-api-key", "access_token", "refresh_token", "sig", "pwd", "code"]
        {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["page", "limit", "event", "id", "name", "region", "format"] {
            assert!(!is_secret_key(key), "{key}");
        }
        let e = Endpoint::new(
            "crm",
            "https://kanta:hunter2@crm.example.com/h?api_key=abc123&region=eu",
            secret(),
            Subscription::default(),
            Policy::default(),
        )
        .expect("valid");
        assert_eq!(e.url.as_str(), "https://kanta:hunter2@crm.example.com/h?api_key=abc123&region=eu", "sent as given");
        assert_eq!(e.masked_url(), "https://kanta:***@crm.example.com/h?api_key=***&region=eu");
        let debug = format!("{e:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("abc123"), "{debug}");
        assert!(debug.contains("https://kanta:***@crm.example.com/h?api_key=***&region=eu"), "{debug}");
        let err = Endpoint::new(
            "crm",
            "ftp://u:hunter2@x.example/?token=abc123",
            secret(),
            Subscription::default(),
            Policy::default(),
        )
        .expect_err("not http");
        assert!(!err.0.contains("hunter2") && !err.0.contains("abc123"), "{err}");
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
