//! `[email]` in kanta.toml: what a user writes ([`EmailSettings`]) and what it checks into
//! ([`EmailConfig`], built once at start-up by [`EmailSettings::check`]).
//!
//! ```toml
//! [email]
//! smtp_url = "smtp://127.0.0.1:2525"      # smtps:// for implicit TLS; user:password@ for auth
//! from = "Shop <hello@shop.example>"
//! public_url = "http://127.0.0.1:8080"    # the base of unsubscribe links
//! rate_per_second = 10                    # messages handed to the server per second, at most
//! concurrency = 4                         # SMTP connections (the pool's size) and sends in flight
//! timeout_seconds = 30                    # the most one message's SMTP exchange may take
//! # ca_file = "/etc/kanta/smtp-ca.pem"    # extra roots for a private server's certificate
//! unsubscribe_secret_env = "KANTA_UNSUBSCRIBE_SECRET"   # or: unsubscribe_secret = "16+ chars"
//! ```
//!
//! TLS: `smtps://` is TLS from the first byte (port 465 by default). `smtp://` (port 25 by
//! default) upgrades with STARTTLS whenever the server offers it — except that a password is
//! never sent in the clear to a host that is not loopback: with `user:password@` and such a
//! host, STARTTLS is required and a server that does not offer it is an error.
//! The SMTP URL's password never appears in `Debug`, `Display` or `kanta config show`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::unsubscribe::UnsubscribeKey;

/// A problem with `[email]`; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[email] {0}")]
pub struct SettingsError(pub String);

/// `[email]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// `smtp://[user:password@]host[:port]` or `smtps://…`.
    pub smtp_url: SmtpUrl,
    /// The sender, `Name <address>` or a bare address; required to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The base of unsubscribe links (`kanta serve`'s public address): `https://…`, or
    /// `http://` on a loopback host for trying things out.
    pub public_url: String,
    /// Messages per second, at most (a token bucket shared by every sending task).
    pub rate_per_second: f64,
    /// SMTP connections kept open (the pool's size), which is also how many sends are in flight.
    pub concurrency: u32,
    /// Seconds one message's whole SMTP exchange (connect, TLS, AUTH, the message and the
    /// server's reply) may take.
    pub timeout_seconds: u64,
    /// A PEM file of extra root certificates, for a server whose certificate a private CA signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The key that signs unsubscribe links (16+ characters)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_secret: Option<HiddenSecret>,
    /// …or the environment variable that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_secret_env: Option<String>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            smtp_url: SmtpUrl("smtp://127.0.0.1:2525".into()),
            from: None,
            public_url: "http://127.0.0.1:8080".into(),
            rate_per_second: 10.0,
            concurrency: 4,
            timeout_seconds: 30,
            ca_file: None,
            unsubscribe_secret: None,
            unsubscribe_secret_env: None,
        }
    }
}

/// The highest `concurrency`: each is an open connection to the user's server, and providers
/// refuse far fewer than this from one client anyway.
pub const MAX_CONCURRENCY: u32 = 64;

/// Longest `public_url`: the unsubscribe URL must stay well inside a header line's 998 bytes.
const MAX_PUBLIC_URL: usize = 512;

impl EmailSettings {
    /// Checks every field and reads the secret (from `unsubscribe_secret_env` through `env`)
    /// and the CA file.
    pub fn check(&self, env: impl Fn(&str) -> Option<String>) -> Result<EmailConfig, SettingsError> {
        let fail = |field: &str, what: String| SettingsError(format!("{field}: {what}"));
        let server = self.smtp_url.server().map_err(|e| fail("smtp_url", e))?;
        let from =
            self.from.as_deref().ok_or_else(|| fail("from", "required, e.g. \"Shop <hello@shop.example>\"".into()))?;
        let from: Mailbox = from.parse().map_err(|e| fail("from", format!("`{from}` is not an address: {e}")))?;
        let public_url = check_public_url(&self.public_url).map_err(|e| fail("public_url", e))?;
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return Err(fail("rate_per_second", format!("must be a positive number, not {}", self.rate_per_second)));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(fail("concurrency", format!("must be 1 to {MAX_CONCURRENCY}, not {}", self.concurrency)));
        }
        if self.timeout_seconds == 0 {
            return Err(fail("timeout_seconds", "must be at least 1".into()));
        }
        let ca_pem = match &self.ca_file {
            None => None,
            Some(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| fail("ca_file", format!("cannot read {}: {e}", path.display())))?;
                // lettre parses it again when the mailer is built; parsing here reports a bad
                // file at start-up, with its name.
                lettre::transport::smtp::client::Certificate::from_pem(&pem)
                    .map_err(|e| fail("ca_file", format!("{} holds no PEM certificate: {e}", path.display())))?;
                Some(pem)
            }
        };
        let secret = match (&self.unsubscribe_secret, &self.unsubscribe_secret_env) {
            (Some(s), None) => s.0.clone(),
            (None, Some(var)) => {
                env(var).ok_or_else(|| fail("unsubscribe_secret_env", format!("`{var}` is not set")))?
            }
            _ => {
                return Err(fail(
                    "unsubscribe_secret",
                    "give exactly one of `unsubscribe_secret` and `unsubscribe_secret_env`".into(),
                ));
            }
        };
        let unsubscribe_key =
            UnsubscribeKey::new(secret.as_bytes()).map_err(|e| fail("unsubscribe_secret", e.to_string()))?;
        Ok(EmailConfig {
            server,
            from,
            public_url,
            rate_per_second: self.rate_per_second,
            concurrency: self.concurrency,
            timeout: Duration::from_secs(self.timeout_seconds),
            ca_pem,
            unsubscribe_key,
        })
    }
}

/// `public_url` without its trailing `/`, if it is an absolute `https` URL, or `http` on a
/// loopback host, with nothing after the path.
fn check_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if text.len() > MAX_PUBLIC_URL {
        return Err(format!("longer than {MAX_PUBLIC_URL} characters"));
    }
    let loopback = url.host().is_some_and(|h| is_loopback(&h));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "`{text}`: unsubscribe links must be https (RFC 8058); http is accepted for loopback hosts only"
            ));
        }
        other => return Err(format!("`{text}`: the scheme must be https, not `{other}`")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}`: give the base URL only, without user, query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        // `smtp:` is not a scheme the URL standard knows, so its IPv4 hosts stay text.
        url::Host::Domain(d) => host_is_loopback(d),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `[email]` checked: what the mailer, the composer and the unsubscribe endpoint use.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// Where to send.
    pub server: SmtpServer,
    /// The sender.
    pub from: Mailbox,
    /// The base of unsubscribe links, without a trailing `/`.
    pub public_url: String,
    /// Messages per second, at most.
    pub rate_per_second: f64,
    /// Connections and sends in flight.
    pub concurrency: u32,
    /// For one message's whole SMTP exchange.
    pub timeout: Duration,
    /// Extra root certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Signs and verifies unsubscribe tokens.
    pub unsubscribe_key: UnsubscribeKey,
}

/// The SMTP server, from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// `user:password@`, percent-decoded.
    pub credentials: Option<Credentials>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS when the server offers it, plain otherwise.
    StartTlsWhenOffered,
    /// `smtp://` with a password to a host that is not loopback: STARTTLS or no connection.
    StartTlsRequired,
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
}

/// A user name and password for SMTP AUTH; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    password: String,
}

impl Credentials {
    /// The password, for the SMTP client only.
    pub fn expose_password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"***").finish()
    }
}

/// The SMTP URL as configured: `Debug`, `Display` and serialisation mask the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// A URL as written (checked by [`SmtpUrl::server`]).
    pub fn new(url: impl Into<String>) -> SmtpUrl {
        SmtpUrl(url.into())
    }

    /// The URL as configured, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The server this URL names.
    pub fn server(&self) -> Result<SmtpServer, String> {
        let masked = self.to_string();
        let url = url::Url::parse(&self.0).map_err(|e| format!("`{masked}` is not a URL: {e}"))?;
        let (implicit, default_port) = match url.scheme() {
            "smtp" => (false, 25),
            "smtps" => (true, 465),
            other => return Err(format!("`{masked}`: the scheme must be smtp or smtps, not `{other}`")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(format!("`{masked}` names no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{masked}`: give scheme, user, password, host and port only"));
        }
        let decode = |s: &str, what: &str| {
            percent_decode(s).ok_or_else(|| format!("`{masked}`: the {what} is not percent-encoded UTF-8"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (_, None) => return Err(format!("`{masked}`: a user needs a password (user:password@host)")),
            (user, Some(password)) => {
                Some(Credentials { user: decode(user, "user")?, password: decode(password, "password")? })
            }
        };
        let loopback = match url.host() {
            Some(h) => is_loopback(&h),
            None => false,
        };
        let security = if implicit {
            Security::ImplicitTls
        } else if credentials.is_some() && !loopback {
            Security::StartTlsRequired
        } else {
            Security::StartTlsWhenOffered
        };
        Ok(SmtpServer { host, port: url.port().unwrap_or(default_port), security, credentials })
    }
}

/// `%XX` decoded, if the result is UTF-8; the URL parser leaves userinfo encoded.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL with the password replaced by `***` (and anything unparsable after `://` up to the
/// last `@` hidden too, since it might be a password).
fn mask(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
            return parsed.to_string();
        }
        if parsed.password().is_none() {
            return url.to_string();
        }
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}***{}", &url[..start + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({})", mask(&self.0))
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl Serialize for SmtpUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A secret in the settings: `Debug` and serialisation print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct HiddenSecret(String);

impl HiddenSecret {
    /// A secret (for tests and callers that build settings in code).
    pub fn new(secret: impl Into<String>) -> HiddenSecret {
        HiddenSecret(secret.into())
    }
}

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

/// Whether `host` (a name or an IP address as in [`SmtpServer::host`]) is loopback.
pub fn host_is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> EmailSettings {
        // The settings are TOML in kanta.toml; serde_json stands in for the deserializer here
        // (this crate does not depend on toml), with the same derive.
        serde_json::from_str(toml_text).unwrap()
    }

    fn with_secret(mut s: EmailSettings) -> EmailSettings {
        s.unsubscribe_secret = Some(HiddenSecret::new("0123456789abcdef"));
        s.from = Some("Shop <hello@shop.example>".into());
        s
    }

    #[test]
    fn the_password_never_shows_in_debug_display_or_serialisation() {
        let url = SmtpUrl::new("smtps://mailer:s3cr%40t@smtp.example.com:465");
        assert_eq!(url.to_string(), "smtps://mailer:***@smtp.example.com:465");
        assert_eq!(format!("{url:?}"), "SmtpUrl(smtps://mailer:***@smtp.example.com:465)");
        assert_eq!(serde_json::to_string(&url).unwrap(), r#""smtps://mailer:***@smtp.example.com:465""#);
        // Unparsable, yet the part before @ is still hidden.
        assert_eq!(SmtpUrl::new("smtp://u:p w@[bad").to_string(), "smtp://***@[bad");
        let server = url.server().unwrap();
        assert!(!format!("{server:?}").contains("s3cr"), "{server:?}");
        let credentials = server.credentials.unwrap();
        assert_eq!((credentials.user.as_str(), credentials.expose_password()), ("mailer", "s3cr@t"));
        let mut s = with_secret(EmailSettings::default());
        s.smtp_url = url;
        let debug = format!("{s:?} {:?}", s.check(|_| None).unwrap());
        assert!(!debug.contains("s3cr") && !debug.contains("0123456789abcdef"), "{debug}");
    }

    #[test]
    fn the_url_scheme_and_host_choose_the_security() {
        let security = |u: &str| SmtpUrl::new(u).server().map(|s| (s.host, s.port, s.security));
        assert_eq!(security("smtp://127.0.0.1:2525"), Ok(("127.0.0.1".into(), 2525, Security::StartTlsWhenOffered)));
        assert_eq!(security("smtp://mx.example"), Ok(("mx.example".into(), 25, Security::StartTlsWhenOffered)));
        assert_eq!(security("smtps://mx.example"), Ok(("mx.example".into(), 465, Security::ImplicitTls)));
        // A password goes in the clear to loopback only.
        assert_eq!(security("smtp://u:p@mx.example:587"), Ok(("mx.example".into(), 587, Security::StartTlsRequired)));
        assert_eq!(security("smtp://u:p@localhost:25"), Ok(("localhost".into(), 25, Security::StartTlsWhenOffered)));
        assert_eq!(security("smtp://u:p@127.0.0.1:25"), Ok(("127.0.0.1".into(), 25, Security::StartTlsWhenOffered)));
        assert_eq!(security("smtp://u:p@10.0.0.1:25"), Ok(("10.0.0.1".into(), 25, Security::StartTlsRequired)));
        assert_eq!(security("smtp://u:p@[::1]:25"), Ok(("::1".into(), 25, Security::StartTlsWhenOffered)));
        for bad in [
            "http://mx.example",
            "smtp://",
            "smtp://u@mx.example",
            "smtp://mx.example/x",
            "smtp://mx?tls=1",
            "nonsense",
        ] {
            assert!(security(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_need_only_a_sender_and_a_secret() {
        let s = settings(r#"{"from": "Shop <hello@shop.example>", "unsubscribe_secret_env": "KANTA_UNSUB"}"#);
        let config = s.check(|v| (v == "KANTA_UNSUB").then(|| "a secret of 16+ bytes".to_string())).unwrap();
        assert_eq!(config.server.port, 2525);
        assert_eq!(config.from.email.domain(), "shop.example");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!((config.concurrency, config.timeout), (4, Duration::from_secs(30)));
        let missing = s.check(|_| None).unwrap_err();
        assert_eq!(missing.to_string(), "[email] unsubscribe_secret_env: `KANTA_UNSUB` is not set");
    }

    #[test]
    fn every_bad_field_is_named() {
        let unknown = serde_json::from_str::<EmailSettings>(r#"{"smtp": "x"}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown field `smtp`"), "{unknown}");
        let problem = |edit: fn(&mut EmailSettings)| {
            let mut s = with_secret(EmailSettings::default());
            edit(&mut s);
            s.check(|_| None).unwrap_err().to_string()
        };
        assert!(problem(|s| s.from = None).starts_with("[email] from: required"));
        assert!(problem(|s| s.from = Some("not an address".into())).starts_with("[email] from: `not an address`"));
        assert!(problem(|s| s.public_url = "http://shop.example".into()).contains("must be https"));
        assert!(problem(|s| s.public_url = "https://shop.example/?a=1".into()).contains("base URL only"));
        assert!(problem(|s| s.rate_per_second = 0.0).starts_with("[email] rate_per_second"));
        assert!(problem(|s| s.rate_per_second = f64::NAN).starts_with("[email] rate_per_second"));
        assert!(problem(|s| s.concurrency = 0).starts_with("[email] concurrency"));
        assert!(problem(|s| s.timeout_seconds = 0).starts_with("[email] timeout_seconds"));
        assert!(
            problem(|s| s.ca_file = Some("/nonexistent/ca.pem".into())).starts_with("[email] ca_file: cannot read")
        );
        assert!(problem(|s| s.unsubscribe_secret = Some(HiddenSecret::new("short"))).contains("16"));
        assert!(problem(|s| s.unsubscribe_secret_env = Some("X".into())).contains("exactly one"));
        let mut ok = with_secret(EmailSettings::default());
        ok.public_url = "https://shop.example/kanta/".into();
        assert_eq!(ok.check(|_| None).unwrap().public_url, "https://shop.example/kanta");
    }
}
