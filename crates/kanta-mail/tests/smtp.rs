//! Sending to a real SMTP server: aiosmtpd on loopback (see `kanta_mail::testing`), plain,
//! with AUTH, with STARTTLS and implicit TLS under a certificate made for the test, with
//! recipients it refuses; every message is read back from its Maildir.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use kanta_domain::Timestamp;
use kanta_mail::compose::{Kind, MessageKey, Outgoing, compose};
use kanta_mail::headers::headers;
use kanta_mail::settings::HiddenSecret;
use kanta_mail::testing::{Smtpd, certificate};
use kanta_mail::unsubscribe::{Channel, unsubscribe_url};
use kanta_mail::{EmailConfig, EmailSettings, Mailer, Outcome, SmtpUrl};

const SECRET: &str = "test-secret-0123456789";

fn config(url: &str, ca_file: Option<&Path>) -> EmailConfig {
    let settings = EmailSettings {
        smtp_url: SmtpUrl::new(url),
        from: Some("Shop <hello@shop.example>".into()),
        public_url: "https://shop.example".into(),
        rate_per_second: 1000.0,
        timeout_seconds: 10,
        ca_file: ca_file.map(Path::to_path_buf),
        unsubscribe_secret: Some(HiddenSecret::new(SECRET)),
        ..EmailSettings::default()
    };
    settings.check(|_| None).unwrap()
}

fn message(config: &EmailConfig, to: &str, occurrence: i64) -> lettre::Message {
    let key = MessageKey::new("welcome", 1, "c-1", 7, "thanks", occurrence);
    let token = config.unsubscribe_key.sign("c-1", Channel::Email, Timestamp::from_micros(1_700_000_000_000_000));
    let kind = Kind::Marketing { unsubscribe_url: unsubscribe_url(&config.public_url, &token) };
    compose(&Outgoing {
        from: &config.from,
        to,
        to_name: Some("Ana"),
        subject: "Grüße, Ana",
        html: "<p>Hello <b>Ana</b></p>",
        text: "Hello Ana\n",
        key: &key,
        kind: &kind,
        date: Timestamp::from_micros(1_700_000_000_000_000),
    })
    .unwrap()
}

fn header<'a>(all: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    all.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

/// The stored message carries the headers we composed, the envelope aiosmtpd saw, and both
/// parts.
fn assert_stored(raw: &[u8], config: &EmailConfig, to: &str, occurrence: i64) {
    let all = headers(raw);
    let key = MessageKey::new("welcome", 1, "c-1", 7, "thanks", occurrence);
    assert_eq!(header(&all, "Message-ID"), [key.message_id("shop.example")]);
    assert_eq!(header(&all, "From"), ["Shop <hello@shop.example>"]);
    assert_eq!(header(&all, "To"), [format!("Ana <{to}>")]);
    assert_eq!(header(&all, "X-MailFrom"), ["hello@shop.example"], "the envelope sender");
    assert_eq!(header(&all, "X-RcptTo"), [to], "the envelope recipient");
    let subject = kanta_mail::headers::decode_encoded_words(header(&all, "Subject")[0]);
    assert_eq!(subject, "Grüße, Ana");
    let unsubscribe = header(&all, "List-Unsubscribe");
    let link = unsubscribe[0].strip_prefix("<https://shop.example/unsubscribe/").unwrap().strip_suffix('>').unwrap();
    assert_eq!(config.unsubscribe_key.verify(link).unwrap().customer, "c-1", "the link's token verifies");
    assert_eq!(header(&all, "List-Unsubscribe-Post"), ["List-Unsubscribe=One-Click"]);
    let body = String::from_utf8_lossy(raw);
    let text = body.find("Content-Type: text/plain; charset=utf-8").expect("a text part");
    let html = body.find("Content-Type: text/html; charset=utf-8").expect("an HTML part");
    assert!(text < html);
    assert!(body[text..html].contains("Hello Ana"), "{body}");
    assert!(body[html..].contains("<p>Hello <b>Ana</b></p>"), "{body}");
}

fn sent(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Sent { response } if response.starts_with("250"))
}

#[tokio::test]
async fn plain_smtp_to_aiosmtpd_stores_every_header_and_both_parts() {
    let server = Smtpd::cli(&[]);
    let config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    let mailer = Mailer::new(&config).unwrap();
    let outcome = mailer.send(&message(&config, "ana@example.com", 0)).await;
    assert!(sent(&outcome), "{outcome:?}");
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_stored(&stored[0], &config, "ana@example.com", 0);
}

#[tokio::test]
async fn many_messages_through_the_pool_at_once_all_arrive() {
    let server = Smtpd::cli(&[]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.concurrency = 3;
    let mailer = Mailer::new(&config).unwrap();
    let sends = (0..12).map(|i| {
        let (mailer, message) = (mailer.clone(), message(&config, &format!("c{i}@example.com"), i));
        tokio::spawn(async move { mailer.send(&message).await })
    });
    for send in sends.collect::<Vec<_>>() {
        let outcome = send.await.unwrap();
        assert!(sent(&outcome), "{outcome:?}");
    }
    let mut ids: Vec<String> =
        server.messages().iter().map(|m| header(&headers(m), "Message-ID")[0].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "every message once");
}

#[tokio::test]
async fn auth_uses_the_urls_user_and_password() {
    let server = Smtpd::script(&["--auth", "mailer:p@ss word"]);
    // The password is percent-encoded in the URL.
    let good = config(&format!("smtp://mailer:p%40ss%20word@127.0.0.1:{}", server.port), None);
    let outcome = Mailer::new(&good).unwrap().send(&message(&good, "ana@example.com", 0)).await;
    assert!(sent(&outcome), "{outcome:?}");
    let wrong = config(&format!("smtp://mailer:wrong@127.0.0.1:{}", server.port), None);
    let outcome = Mailer::new(&wrong).unwrap().send(&message(&wrong, "ana@example.com", 1)).await;
    assert!(matches!(outcome, Outcome::Permanent { code: Some(535), .. }), "{outcome:?}");
    let anonymous = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    let outcome = Mailer::new(&anonymous).unwrap().send(&message(&anonymous, "ana@example.com", 2)).await;
    assert!(matches!(outcome, Outcome::Permanent { code: Some(530), .. }), "{outcome:?}");
    let stored = server.messages();
    assert_eq!(stored.len(), 1, "only the authenticated message");
    assert_stored(&stored[0], &good, "ana@example.com", 0);
}

#[tokio::test]
async fn starttls_is_used_when_offered_and_the_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    // aiosmtpd's --tlscert offers STARTTLS and, by default, refuses MAIL before it: a message
    // that arrives went over TLS.
    let server = Smtpd::cli(&["--tlscert", cert.to_str().unwrap(), "--tlskey", key.to_str().unwrap()]);
    let url = format!("smtp://127.0.0.1:{}", server.port);
    let trusted = config(&url, Some(&cert));
    let outcome = Mailer::new(&trusted).unwrap().send(&message(&trusted, "ana@example.com", 0)).await;
    assert!(sent(&outcome), "{outcome:?}");
    // Without the CA file the certificate is not trusted: nothing is sent, and that is
    // temporary (the message itself is fine).
    let untrusted = config(&url, None);
    let outcome = Mailer::new(&untrusted).unwrap().send(&message(&untrusted, "ana@example.com", 1)).await;
    assert!(matches!(outcome, Outcome::Temporary { code: None, .. }), "{outcome:?}");
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_stored(&stored[0], &trusted, "ana@example.com", 0);
}

#[tokio::test]
async fn smtps_is_tls_from_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let server = Smtpd::cli(&["--smtpscert", cert.to_str().unwrap(), "--smtpskey", key.to_str().unwrap()]);
    let tls = config(&format!("smtps://127.0.0.1:{}", server.port), Some(&cert));
    let outcome = Mailer::new(&tls).unwrap().send(&message(&tls, "ana@example.com", 0)).await;
    assert!(sent(&outcome), "{outcome:?}");
    assert_eq!(server.messages().len(), 1);
    assert_stored(&server.messages()[0], &tls, "ana@example.com", 0);
}

#[tokio::test]
async fn a_refused_recipient_is_permanent_a_4xx_temporary_and_the_next_message_goes_through() {
    let server = Smtpd::script(&[
        "--reject",
        "gone@example.com=550 5.1.1 <gone@example.com>: no such user",
        "--reject",
        "busy@example.com=451 4.2.1 mailbox busy, try later",
    ]);
    let config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    let mailer = Mailer::new(&config).unwrap();
    let gone = mailer.send(&message(&config, "gone@example.com", 0)).await;
    assert_eq!(
        gone,
        Outcome::Permanent { code: Some(550), text: "5.1.1 <gone@example.com>: no such user".into() },
        "the server's answer is kept"
    );
    let busy = mailer.send(&message(&config, "busy@example.com", 1)).await;
    assert_eq!(busy, Outcome::Temporary { code: Some(451), text: "4.2.1 mailbox busy, try later".into() });
    let next = mailer.send(&message(&config, "ana@example.com", 2)).await;
    assert!(sent(&next), "{next:?}");
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_stored(&stored[0], &config, "ana@example.com", 2);
}

#[tokio::test]
async fn no_server_listening_is_temporary() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = config(&format!("smtp://127.0.0.1:{port}"), None);
    let mailer = Mailer::new(&config).unwrap();
    let outcome = mailer.send(&message(&config, "ana@example.com", 0)).await;
    // Nothing was sent: Temporary, not Unknown.
    assert!(matches!(outcome, Outcome::Temporary { code: None, .. }), "{outcome:?}");
    assert!(mailer.check().await.is_err());
}

#[tokio::test]
async fn a_server_that_never_greets_is_temporary_within_the_timeout() {
    // Accepts connections and never says a word: no message was sent, so it is no doubt.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut config = config(&format!("smtp://127.0.0.1:{port}"), None);
    config.timeout = std::time::Duration::from_secs(1);
    let mailer = Mailer::new(&config).unwrap();
    // Tokio's clock, paused, jumps to the timeout once nothing else can happen: the send returns
    // because of the timeout, never because the test waited (an unbounded send would hang here).
    tokio::time::pause();
    let outcome = mailer.send(&message(&config, "ana@example.com", 0)).await;
    assert!(matches!(outcome, Outcome::Temporary { code: None, .. }), "{outcome:?}");
    drop(silent);
}

#[tokio::test]
async fn one_connection_carries_message_after_message() {
    let server = Smtpd::cli(&[]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.concurrency = 1;
    let mailer = Mailer::new(&config).unwrap();
    for i in 0..50 {
        let outcome = mailer.send(&message(&config, &format!("c{i}@example.com"), i)).await;
        assert!(sent(&outcome), "{outcome:?}");
    }
    assert_eq!(mailer.connections_opened(), 1, "reused, not reopened");
    assert_eq!(server.messages().len(), 50);
    // At three in flight, at most three connections.
    config.concurrency = 3;
    let mailer = Mailer::new(&config).unwrap();
    let sends: Vec<_> = (50..80)
        .map(|i| {
            let (mailer, message) = (mailer.clone(), message(&config, &format!("c{i}@example.com"), i));
            tokio::spawn(async move { mailer.send(&message).await })
        })
        .collect();
    for send in sends {
        assert!(sent(&send.await.unwrap()));
    }
    assert!((1..=3).contains(&mailer.connections_opened()), "{}", mailer.connections_opened());
}

#[tokio::test]
async fn a_refused_or_unanswered_message_never_hands_its_connection_to_the_next() {
    let server = Smtpd::script(&["--reject", "gone@example.com=550 5.1.1 no such user", "--stall", "slow@example.com"]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.concurrency = 1;
    config.timeout = std::time::Duration::from_secs(1);
    let mailer = Mailer::new(&config).unwrap();
    assert!(sent(&mailer.send(&message(&config, "ana@example.com", 0)).await));
    // A refused recipient: lettre aborts that connection; the next message opens another.
    let gone = mailer.send(&message(&config, "gone@example.com", 1)).await;
    assert!(matches!(gone, Outcome::Permanent { code: Some(550), .. }), "{gone:?}");
    assert!(sent(&mailer.send(&message(&config, "bo@example.com", 2)).await));
    assert_eq!(mailer.connections_opened(), 2);
    // The server takes the data and never answers: in doubt, and that connection is closed —
    // reused, its late reply would be read as the next message's answer.
    let slow = mailer.send(&message(&config, "slow@example.com", 3)).await;
    assert!(matches!(slow, Outcome::Unknown { .. }), "{slow:?}");
    let next = mailer.send(&message(&config, "cy@example.com", 4)).await;
    assert!(sent(&next), "{next:?}");
    assert_eq!(mailer.connections_opened(), 3);
    let mut to: Vec<String> = server.messages().iter().map(|m| header(&headers(m), "To")[0].to_string()).collect();
    to.sort();
    assert_eq!(to, ["Ana <ana@example.com>", "Ana <bo@example.com>", "Ana <cy@example.com>"]);
    mailer.check().await.expect("a fresh connection and QUIT");
}

#[tokio::test]
async fn an_idle_connection_is_reused_within_a_minute_of_its_last_use_and_not_after() {
    use std::time::Duration;
    let server = Smtpd::cli(&[]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.concurrency = 1;
    let mailer = Mailer::new(&config).unwrap();
    // The pool reads tokio's clock: moved forward here instead of waiting.
    let idle_for = |seconds| async move {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(seconds)).await;
        tokio::time::resume();
    };
    assert!(sent(&mailer.send(&message(&config, "ana@example.com", 0)).await));
    idle_for(59).await;
    assert!(sent(&mailer.send(&message(&config, "bo@example.com", 1)).await));
    // 118 s after it was opened, 59 s after its last message: the age counts from the last use.
    idle_for(59).await;
    assert!(sent(&mailer.send(&message(&config, "cy@example.com", 2)).await));
    assert_eq!(mailer.connections_opened(), 1, "reused while idle under a minute");
    idle_for(61).await;
    assert!(sent(&mailer.send(&message(&config, "di@example.com", 3)).await));
    assert_eq!(mailer.connections_opened(), 2, "idle over a minute: closed, and a new one opened");
    assert_eq!(server.messages().len(), 4);
}

#[tokio::test]
async fn starttls_required_and_not_offered_sends_nothing() {
    // A password for a host that is not loopback requires STARTTLS (see the settings); this
    // server offers none.
    let server = Smtpd::cli(&[]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.server.security = kanta_mail::settings::Security::StartTlsRequired;
    let mailer = Mailer::new(&config).unwrap();
    let outcome = mailer.send(&message(&config, "ana@example.com", 0)).await;
    // lettre refuses before MAIL FROM: the module's rule for a client refusal, Permanent with
    // no code (the settings, not the message, must change).
    match &outcome {
        Outcome::Permanent { code: None, text } => assert!(text.contains("STARTTLS"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(mailer.check().await, Err(outcome));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_idle_connection_that_does_not_answer_noop_is_given_up_for_a_new_one() {
    let server = Smtpd::script(&["--ignore-noop"]);
    let mut config = config(&format!("smtp://127.0.0.1:{}", server.port), None);
    config.concurrency = 1;
    let mailer = Mailer::new(&config).unwrap();
    assert!(sent(&mailer.send(&message(&config, "ana@example.com", 0)).await));
    // The idle connection's NOOP goes unanswered: after its short check, not the send's whole
    // timeout (which would make this send Temporary), a new connection carries the message.
    let second = mailer.send(&message(&config, "bo@example.com", 1)).await;
    assert!(sent(&second), "{second:?}");
    assert_eq!(mailer.connections_opened(), 2);
    assert_eq!(server.messages().len(), 2);
}
