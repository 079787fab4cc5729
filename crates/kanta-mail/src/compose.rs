//! Composing a rendered message into the bytes sent: headers, Message-ID, and the
//! List-Unsubscribe pair of RFC 2369 and RFC 8058.
//!
//! Every message is `multipart/alternative` with the text part first and the HTML part last
//! (clients show the last part they can). lettre encodes non-ASCII headers (RFC 2047) and
//! bodies (quoted-printable or base64), so no line of the result exceeds 998 bytes.
//!
//! **Message-ID.** `<KEY@DOMAIN>`: `KEY` is the message's idempotency key ([`MessageKey`]) and
//! `DOMAIN` the sender's domain (IDNA-encoded). The key is made safe for a msg-id's
//! `dot-atom-text` (RFC 5322 §3.6.4): each part is kept when it is letters, digits, `-` and
//! `_`, and every other byte is written `=HH` (`=` itself too, so the encoding is reversible and
//! two keys never collide); the parts are joined with `.`, which therefore never appears
//! inside one. A key longer than [`MAX_KEY`] (a very long customer id) becomes
//! `h.` + the SHA-256 of the full key in hex, still one fixed key per message. Because the
//! Message-ID is a function of the key, a message sent twice after a crash carries the same
//! Message-ID, and receiving systems that deduplicate on it see one message.

use std::time::{Duration, SystemTime};

use kanta_domain::Timestamp;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::{Digest, Sha256};

/// Longest [`MessageKey`] text; longer keys are hashed. Keeps the Message-ID line short.
pub const MAX_KEY: usize = 200;

/// Longest unsubscribe URL: `List-Unsubscribe: <URL>` is one unfoldable line, and a line may
/// hold 998 bytes.
pub const MAX_UNSUBSCRIBE_URL: usize = 900;

/// The idempotency key of one message: journey, version, customer, run, step, occurrence.
/// Its text ([`MessageKey::as_str`]) is the outbox row's key and the left half of the
/// Message-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey(String);

impl MessageKey {
    /// The key of occurrence `occurrence` of step `step` in run `run` of `journey` at
    /// `version`, for `customer` (the external id).
    pub fn new(journey: &str, version: i64, customer: &str, run: i64, step: &str, occurrence: i64) -> MessageKey {
        let parts =
            [journey, &version.to_string(), customer, &run.to_string(), step, &occurrence.to_string()].map(encode_part);
        let key = parts.join(".");
        if key.len() <= MAX_KEY {
            MessageKey(key)
        } else {
            let digest = Sha256::digest(key.as_bytes());
            MessageKey(format!("h.{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        }
    }

    /// The key as text: `dot-atom-text`, at most [`MAX_KEY`] bytes.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<KEY@domain>`.
    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{domain}>", self.0)
    }
}

fn encode_part(part: &str) -> String {
    if part.is_empty() {
        // An atom cannot be empty; `=` alone never appears otherwise (an encoded byte is `=HH`).
        return "=".into();
    }
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// Marketing or transactional: only marketing mail carries List-Unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Mail the customer may refuse: carries `List-Unsubscribe: <url>` and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    Marketing {
        /// The signed one-click link ([`crate::unsubscribe::unsubscribe_url`]).
        unsubscribe_url: String,
    },
    /// Mail the customer needs (a receipt): no unsubscribe headers.
    Transactional,
}

/// A rendered message, addressed.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The sender (from the settings).
    pub from: &'a Mailbox,
    /// The recipient's address as stored (a bare address; the customer's name may be given
    /// in `to_name`).
    pub to: &'a str,
    /// The recipient's display name.
    pub to_name: Option<&'a str>,
    /// The subject.
    pub subject: &'a str,
    /// The HTML part.
    pub html: &'a str,
    /// The text part.
    pub text: &'a str,
    /// The idempotency key.
    pub key: &'a MessageKey,
    /// Marketing or transactional.
    pub kind: &'a Kind,
    /// The `Date:` header (the caller's clock).
    pub date: Timestamp,
}

/// Why a message cannot be composed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The recipient is not a deliverable address.
    #[error("recipient `{value}` is not an email address: {reason}")]
    Recipient {
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// The sender's domain cannot be used in a Message-ID.
    #[error("sender domain `{0}` cannot be written in ASCII")]
    SenderDomain(String),
    /// The unsubscribe URL cannot be carried in the header.
    #[error("unsubscribe URL `{value}`: {reason}")]
    UnsubscribeUrl {
        /// As given (cut to 100 characters).
        value: String,
        /// Why.
        reason: String,
    },
    /// lettre refused the message.
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// The message: From, To, Subject, Date, Message-ID, MIME-Version, the unsubscribe headers for
/// marketing mail, and the text and HTML parts.
pub fn compose(out: &Outgoing<'_>) -> Result<Message, ComposeError> {
    let recipient = |reason: String| ComposeError::Recipient { value: out.to.chars().take(300).collect(), reason };
    let address: lettre::Address = out.to.trim().parse().map_err(|e| recipient(format!("{e}")))?;
    let to = Mailbox::new(out.to_name.map(str::to_string), address);
    let domain = ascii_domain(out.from.email.domain())?;
    // A subject is one line; a template's stray newline must not start a header.
    let subject: String = out.subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut builder = Message::builder()
        .from(out.from.clone())
        .to(to)
        .subject(subject)
        .date(system_time(out.date))
        .message_id(Some(out.key.message_id(&domain)));
    if let Kind::Marketing { unsubscribe_url } = out.kind {
        check_unsubscribe_url(unsubscribe_url)?;
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{unsubscribe_url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    Ok(builder.multipart(MultiPart::alternative_plain_html(out.text.to_string(), out.html.to_string()))?)
}

/// The URL must be absolute http(s), ASCII, without white space or angle brackets (it sits
/// inside `<…>`), and short enough for one header line.
fn check_unsubscribe_url(url: &str) -> Result<(), ComposeError> {
    let fail =
        |reason: &str| ComposeError::UnsubscribeUrl { value: url.chars().take(100).collect(), reason: reason.into() };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(fail("must start with https:// (or http:// for a local trial)"));
    }
    if url.bytes().any(|b| !b.is_ascii_graphic() || b == b'<' || b == b'>') {
        return Err(fail("must be ASCII without spaces or angle brackets"));
    }
    if url.len() > MAX_UNSUBSCRIBE_URL {
        return Err(fail("longer than a header line can carry (900 bytes)"));
    }
    Ok(())
}

fn ascii_domain(domain: &str) -> Result<String, ComposeError> {
    if domain.is_ascii() {
        return Ok(domain.to_ascii_lowercase());
    }
    match url::Host::parse(domain) {
        Ok(url::Host::Domain(ascii)) => Ok(ascii),
        _ => Err(ComposeError::SenderDomain(domain.into())),
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    let micros = t.micros();
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "Shop <hello@shop.example>".parse().unwrap()
    }

    fn formatted(kind: &Kind, subject: &str, html: &str, text: &str) -> String {
        let key = MessageKey::new("welcome", 3, "c-1", 17, "thanks", 0);
        let message = compose(&Outgoing {
            from: &from(),
            to: "ana@example.com",
            to_name: Some("Ana Ölund"),
            subject,
            html,
            text,
            key: &key,
            kind,
            date: Timestamp::from_micros(1_700_000_000_000_000),
        })
        .unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    fn headers(raw: &str) -> Vec<&str> {
        raw.split("\r\n\r\n").next().unwrap().split("\r\n").collect()
    }

    #[test]
    fn marketing_mail_carries_both_unsubscribe_headers_exactly() {
        let kind = Kind::Marketing { unsubscribe_url: "https://shop.example/unsubscribe/abc.def".into() };
        let raw = formatted(&kind, "Hello", "<p>Hi</p>", "Hi\n");
        let headers = headers(&raw);
        for expected in [
            "From: Shop <hello@shop.example>",
            "Subject: Hello",
            "Date: Tue, 14 Nov 2023 22:13:20 +0000",
            "Message-ID: <welcome.3.c-1.17.thanks.0@shop.example>",
            "List-Unsubscribe: <https://shop.example/unsubscribe/abc.def>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "MIME-Version: 1.0",
        ] {
            assert_eq!(headers.iter().filter(|h| **h == expected).count(), 1, "{expected} in {headers:#?}");
        }
        assert!(
            headers.iter().any(|h| h.starts_with("To: =?utf-8?") && h.ends_with("<ana@example.com>")),
            "{headers:#?}"
        );
        assert!(raw.contains("Content-Type: multipart/alternative;"));
        let text_at = raw.find("Content-Type: text/plain; charset=utf-8").unwrap();
        let html_at = raw.find("Content-Type: text/html; charset=utf-8").unwrap();
        assert!(text_at < html_at, "text first, HTML last");
    }

    #[test]
    fn transactional_mail_has_no_unsubscribe_headers() {
        let raw = formatted(&Kind::Transactional, "Receipt", "<p>Paid</p>", "Paid\n");
        assert!(!raw.to_ascii_lowercase().contains("list-unsubscribe"), "{raw}");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_and_no_line_exceeds_998_bytes() {
        let long_line = "ä".repeat(3000);
        let html = format!("<p>{long_line}</p>");
        let raw = formatted(&Kind::Transactional, "Grüße, Ana — 10 % off\nnext", &html, &long_line);
        assert!(raw.is_ascii(), "the message is 7-bit on the wire");
        assert!(raw.split("\r\n").all(|l| l.len() <= 998), "a line is longer than 998 bytes");
        let subject = headers(&raw).into_iter().find(|h| h.starts_with("Subject: ")).unwrap();
        assert!(subject.starts_with("Subject: =?utf-8?"), "{subject}");
        assert!(!raw.contains("\nnext"), "a newline in the subject starts no header");
    }

    #[test]
    fn message_keys_are_safe_for_a_msg_id_and_never_collide() {
        let key = |customer: &str, step: &str| MessageKey::new("j", 1, customer, 2, step, 0).as_str().to_string();
        assert_eq!(key("c-1", "s_1"), "j.1.c-1.2.s_1.0");
        assert_eq!(key("a.b@c d", "s"), "j.1.a=2Eb=40c=20d.2.s.0");
        assert_eq!(key("Zoë", "s"), "j.1.Zo=C3=AB.2.s.0");
        assert_ne!(key("a.b", "c"), key("a", "b.c"), "a dot inside a part is encoded");
        assert_ne!(key("=2E", "s"), key(".", "s"), "= itself is encoded");
        assert_eq!(key("", "s"), "j.1.=.2.s.0");
        let long = key(&"é".repeat(256), "s");
        assert_eq!((long.len(), &long[..2]), (66, "h."));
        for k in [key("a.b@c d<>\"()[],;:\\", "s"), long] {
            let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
            assert!(k.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext)), "{k}");
        }
    }

    #[test]
    fn bad_recipients_and_urls_are_named() {
        let key = MessageKey::new("j", 1, "c", 1, "s", 0);
        let out = |to: &'static str, kind: &'static Kind| {
            compose(&Outgoing {
                from: &from(),
                to,
                to_name: None,
                subject: "s",
                html: "",
                text: "",
                key: &key,
                kind,
                date: Timestamp::EPOCH,
            })
        };
        static PLAIN: Kind = Kind::Transactional;
        let err = out("not an address", &PLAIN).unwrap_err();
        assert!(err.to_string().starts_with("recipient `not an address` is not an email address"), "{err}");
        assert!(out("Ana <ana@example.com>", &PLAIN).is_err(), "a bare address, the name goes in to_name");
        static SPACE: std::sync::LazyLock<Kind> =
            std::sync::LazyLock::new(|| Kind::Marketing { unsubscribe_url: "https://x.example/a b".into() });
        assert!(matches!(out("a@b.example", &SPACE), Err(ComposeError::UnsubscribeUrl { .. })));
        static MAILTO: std::sync::LazyLock<Kind> =
            std::sync::LazyLock::new(|| Kind::Marketing { unsubscribe_url: "mailto:x@y".into() });
        assert!(matches!(out("a@b.example", &MAILTO), Err(ComposeError::UnsubscribeUrl { .. })));
    }
}
