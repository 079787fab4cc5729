//! `kanta mail listen`: the real binary, sent to by kanta-mail's mailer (and by hand, for the
//! protocol's corners); what it prints and the `.eml` files it writes.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kanta_domain::Timestamp;
use kanta_mail::compose::{Kind, MessageKey, Outgoing, compose};
use kanta_mail::settings::HiddenSecret;
use kanta_mail::{EmailConfig, EmailSettings, Mailer, Outcome, SmtpUrl};

/// `kanta mail listen --listen 127.0.0.1:0 ARGS…` and the address it prints.
fn listen(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(["mail", "listen", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address =
        line.trim().strip_prefix("kanta mail listen: listening on smtp://").unwrap_or_else(|| panic!("{line}"));
    let address = address.to_string();
    // Keep draining standard error so the child never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, address)
}

/// Waits for the child to exit by itself; its exit code and standard output.
fn finish(mut child: Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("kanta mail listen did not stop after its --count");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), out)
}

fn config(address: &str, concurrency: u32) -> EmailConfig {
    EmailSettings {
        smtp_url: SmtpUrl::new(format!("smtp://{address}")),
        from: Some("Shop <hello@shop.example>".into()),
        concurrency,
        rate_per_second: 1000.0,
        timeout_seconds: 10,
        unsubscribe_secret: Some(HiddenSecret::new("test-secret-0123456789")),
        ..EmailSettings::default()
    }
    .check(|_| None)
    .unwrap()
}

/// How [`send_all`] hands its messages to the mailer.
#[derive(Clone, Copy)]
enum Sending {
    /// Each send waits for the one before, so the listener sees them in this order.
    InOrder,
    /// All sends start together and race for the mailer's connections.
    AtOnce,
}

fn send_all(config: &EmailConfig, recipients: &[String], sending: Sending) -> Vec<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mailer = Mailer::new(config).unwrap();
        let mut sends = Vec::new();
        let mut outcomes = Vec::new();
        for (i, to) in recipients.iter().enumerate() {
            let key = MessageKey::new("welcome", 1, &format!("c-{i}"), 7, "thanks", 0);
            let kind = Kind::Marketing { unsubscribe_url: format!("https://shop.example/unsubscribe/t{i}") };
            let message = compose(&Outgoing {
                from: &config.from,
                to,
                to_name: None,
                subject: "Grüße",
                html: "<p>Hello</p>",
                text: "Hello\n",
                key: &key,
                kind: &kind,
                date: Timestamp::from_micros(1_700_000_000_000_000),
            })
            .unwrap();
            let mailer = mailer.clone();
            let send = tokio::spawn(async move { mailer.send(&message).await });
            match sending {
                Sending::InOrder => outcomes.push(send.await.unwrap()),
                Sending::AtOnce => sends.push(send),
            }
        }
        for send in sends {
            outcomes.push(send.await.unwrap());
        }
        outcomes
    })
}

fn eml_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn mail_listen_prints_each_messages_key_headers_and_writes_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail");
    let (child, address) = listen(&["--dir", out.to_str().unwrap(), "--count", "2"]);
    let to: Vec<String> = vec!["ana@example.com".into(), "ben@example.com".into()];
    let outcomes = send_all(&config(&address, 1), &to, Sending::InOrder);
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Sent { response } if response.starts_with("250"))),
        "{outcomes:?}"
    );
    let (code, stdout) = finish(child);
    assert_eq!(code, 0);
    let file = |n: &str| out.join(n).display().to_string();
    // Sent one after another, so the listener numbers them in this order.
    let expected = format!(
        "message 1 {} (BYTES) from <hello@shop.example> to <ana@example.com>\n\
         Message-ID: <welcome.1.c-0.7.thanks.0@shop.example>\n\
         From: Shop <hello@shop.example>\n\
         To: ana@example.com\n\
         Subject: Grüße\n\
         List-Unsubscribe: <https://shop.example/unsubscribe/t0>\n\
         List-Unsubscribe-Post: List-Unsubscribe=One-Click\n\n\
         message 2 {} (BYTES) from <hello@shop.example> to <ben@example.com>\n\
         Message-ID: <welcome.1.c-1.7.thanks.0@shop.example>\n\
         From: Shop <hello@shop.example>\n\
         To: ben@example.com\n\
         Subject: Grüße\n\
         List-Unsubscribe: <https://shop.example/unsubscribe/t1>\n\
         List-Unsubscribe-Post: List-Unsubscribe=One-Click\n\n",
        file("0001.eml"),
        file("0002.eml")
    );
    assert_eq!(bytes_masked(&stdout), expected);
    assert_eq!(eml_files(&out), ["0001.eml", "0002.eml"]);
    let eml = std::fs::read_to_string(out.join("0002.eml")).unwrap();
    let size: usize =
        stdout.lines().nth(8).unwrap().split(" (").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(eml.len(), size, "the printed size is the file's");
    assert!(eml.contains("\r\nMessage-ID: <welcome.1.c-1.7.thanks.0@shop.example>\r\n"), "{eml}");
    assert!(eml.contains("Content-Type: text/plain; charset=utf-8") && eml.contains("<p>Hello</p>"), "{eml}");
    assert!(eml.ends_with("\r\n") && !eml.ends_with("\r\n.\r\n"), "the terminating dot is not stored");

    // A second run adds after the files already there.
    let (child, address) = listen(&["--dir", out.to_str().unwrap(), "--count", "1"]);
    let outcomes = send_all(&config(&address, 1), &["cy@example.com".to_string()], Sending::InOrder);
    assert!(matches!(outcomes[0], Outcome::Sent { .. }), "{outcomes:?}");
    assert_eq!(finish(child).0, 0);
    assert_eq!(eml_files(&out), ["0001.eml", "0002.eml", "0003.eml"]);
}

#[test]
fn mail_listen_count_is_exact_under_concurrent_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (child, address) = listen(&["--dir", dir.path().to_str().unwrap(), "--count", "3"]);
    let to: Vec<String> = (0..12).map(|i| format!("c{i}@example.com")).collect();
    let outcomes = send_all(&config(&address, 12), &to, Sending::AtOnce);
    let (code, stdout) = finish(child);
    assert_eq!(code, 0);
    let sent = outcomes.iter().filter(|o| matches!(o, Outcome::Sent { .. })).count();
    assert_eq!(sent, 3, "{outcomes:?}");
    // The others were refused (451 after the count, 421 on a closing session) or found the
    // receiver gone: never sent.
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Sent { .. } | Outcome::Temporary { .. } | Outcome::Unknown { .. })),
        "{outcomes:?}"
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("message ")).count(), 3, "{stdout}");
    assert_eq!(eml_files(dir.path()), ["0001.eml", "0002.eml", "0003.eml"]);
}

/// One exchange: send `line` (with CRLF), return the reply's lines.
fn say(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &[u8]) -> String {
    stream.write_all(&[line, b"\r\n"].concat()).unwrap();
    reply(reader)
}

fn reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        all.push_str(&line);
        // The last line of a reply has a space after the code ("250 "), the others a dash.
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return all;
        }
    }
}

#[test]
fn mail_listen_survives_garbage_and_unstuffs_dots() {
    let dir = tempfile::tempdir().unwrap();
    let (child, address) = listen(&["--dir", dir.path().to_str().unwrap(), "--count", "1", "--max-size", "4096"]);
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert!(reply(&mut reader).starts_with("220 "));
    assert!(say(&mut stream, &mut reader, b"MAIL FROM:<a@b.example>").starts_with("503 "), "EHLO first");
    assert!(say(&mut stream, &mut reader, b"\xff\x00\xfe garbage").starts_with("500 "));
    assert!(say(&mut stream, &mut reader, &[b'A'; 5000]).starts_with("500 5.5.2 line too long"));
    let ehlo = say(&mut stream, &mut reader, b"EHLO client.example");
    assert!(ehlo.starts_with("250-") && ehlo.contains("250-SIZE 4096\r\n"), "{ehlo}");
    assert!(say(&mut stream, &mut reader, b"DATA").starts_with("503 "), "RCPT first");
    assert!(say(&mut stream, &mut reader, b"MAIL FROM:<big@b.example> SIZE=99999").starts_with("552 "));
    assert!(say(&mut stream, &mut reader, b"MAIL FROM:<a@b.example>").starts_with("250 "));
    assert!(say(&mut stream, &mut reader, b"RCPT TO:<c@d.example>").starts_with("250 "));
    assert!(say(&mut stream, &mut reader, b"DATA").starts_with("354 "));
    // Over --max-size: refused, and the session goes on.
    for _ in 0..100 {
        stream.write_all(&[b'x'; 100]).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    assert!(say(&mut stream, &mut reader, b".").starts_with("552 "));
    assert!(say(&mut stream, &mut reader, b"RSET").starts_with("250 "));
    assert!(say(&mut stream, &mut reader, b"MAIL FROM:<a@b.example>").starts_with("250 "));
    assert!(say(&mut stream, &mut reader, b"RCPT TO:<c@d.example>").starts_with("250 "));
    assert!(say(&mut stream, &mut reader, b"DATA").starts_with("354 "));
    stream.write_all(b"Subject: dots\r\n\r\n..leading dot\r\n...\r\nlast\n").unwrap();
    assert!(say(&mut stream, &mut reader, b".").starts_with("250 "));
    // The count is reached: the session is closed, unasked.
    let closing = reply(&mut reader);
    assert!(closing.starts_with("421 "), "{closing}");
    let (code, stdout) = finish(child);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("message 1 ") && stdout.contains("from <a@b.example> to <c@d.example>"), "{stdout}");
    assert!(stdout.contains("\nSubject: dots\n"), "{stdout}");
    let eml = std::fs::read(dir.path().join("0001.eml")).unwrap();
    assert_eq!(eml, b"Subject: dots\r\n\r\n.leading dot\r\n..\r\nlast\r\n");
}

/// `stdout` with each "(N bytes)" written "(BYTES)", since sizes depend on the boundary lettre
/// draws.
fn bytes_masked(stdout: &str) -> String {
    stdout
        .lines()
        .map(|line| match (line.find(" ("), line.find(" bytes)")) {
            (Some(open), Some(close)) if open < close => format!("{} (BYTES){}", &line[..open], &line[close + 7..]),
            _ => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}
