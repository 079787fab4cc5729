//! The peer of `bench/journeys-delivery.sh` part (b): a bare lettre send loop, nothing but
//! building a message and sending it, to compare `kanta journeys run`'s email throughput with.
//!
//!     bare_send HOST:PORT COUNT CONCURRENCY TEXT_FILE HTML_FILE SUBJECT UNSUBSCRIBE_URL
//!
//! Sends COUNT `multipart/alternative` messages (the text and HTML parts read from the files,
//! e.g. written by `kanta journeys preview --text/--html`, so the bodies are kanta's), each to
//! its own address, with the headers kanta's messages carry (From, To with a display name,
//! Subject, Message-ID, Date, List-Unsubscribe and List-Unsubscribe-Post), through lettre's
//! async SMTP transport configured as `kanta_mail::Mailer` configures it: plain SMTP to
//! loopback, a connection pool of CONCURRENCY connections, CONCURRENCY sends in flight. No
//! store, no guardrails, no rate limit. Prints one line: the messages, the seconds, messages per
//! second and the size of one message.
//!
//! `VIA=kanta` sends the same messages through `kanta_mail::Mailer` instead (its own pool of
//! `TCP_NODELAY` connections, the same concurrency), to compare the two transports alone.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool: a bad argument ends it")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};

fn message(i: usize, subject: &str, text: &str, html: &str, unsubscribe: &str) -> Message {
    let from: Mailbox = "Shop <hello@shop.example>".parse().unwrap();
    let to: Mailbox = format!("Customer {i} <c-{i}@example.org>").parse().unwrap();
    let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<bench.1.{i}.{i}.0.1@shop.example>")))
        .date_now()
        .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
        .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()))
        .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))
        .unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, count, concurrency, text, html, subject, unsubscribe] = &args[..] else {
        eprintln!("usage: bare_send HOST:PORT COUNT CONCURRENCY TEXT_FILE HTML_FILE SUBJECT UNSUBSCRIBE_URL");
        std::process::exit(2);
    };
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let count: usize = count.parse().expect("COUNT");
    let concurrency: u32 = concurrency.parse().expect("CONCURRENCY");
    let text = std::fs::read_to_string(text).expect("TEXT_FILE");
    let html = std::fs::read_to_string(html).expect("HTML_FILE");
    let transport: AsyncSmtpTransport<Tokio1Executor> = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port.parse().expect("PORT"))
        .hello_name(ClientId::Domain("shop.example".into()))
        .pool_config(PoolConfig::new().max_size(concurrency))
        .build();
    let size = message(0, subject, &text, &html, unsubscribe).formatted().len();
    let shared = Arc::new((text, html, subject.clone(), unsubscribe.clone()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    let via_kanta = std::env::var("VIA").is_ok_and(|v| v == "kanta");
    let mailer = via_kanta.then(|| {
        let settings = kanta_mail::EmailSettings {
            smtp_url: kanta_mail::SmtpUrl::new(format!("smtp://{host}:{port}")),
            from: Some("Shop <hello@shop.example>".into()),
            public_url: "https://shop.example".into(),
            rate_per_second: 1e9,
            concurrency,
            unsubscribe_secret: Some(kanta_mail::settings::HiddenSecret::new("bench-secret-0123456789")),
            ..kanta_mail::EmailSettings::default()
        };
        kanta_mail::Mailer::new(&settings.check(|_| None).expect("settings")).expect("mailer")
    });
    for _ in 0..concurrency {
        let (transport, shared, next, mailer) = (transport.clone(), shared.clone(), next.clone(), mailer.clone());
        workers.push(tokio::spawn(async move {
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return failed;
                }
                let (text, html, subject, unsubscribe) = &*shared;
                let m = message(i, subject, text, html, unsubscribe);
                let ok = match &mailer {
                    Some(mailer) => matches!(mailer.send(&m).await, kanta_mail::Outcome::Sent { .. }),
                    None => transport.send_raw(m.envelope(), &m.formatted()).await.is_ok(),
                };
                if !ok {
                    failed += 1;
                }
            }
        }));
    }
    let mut failed = 0;
    for w in workers {
        failed += w.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}: {count} messages in {seconds:.2} s: {:.0} messages/s ({size} bytes each, {failed} failed)",
        if via_kanta { "kanta Mailer" } else { "bare lettre" },
        count as f64 / seconds
    );
}
