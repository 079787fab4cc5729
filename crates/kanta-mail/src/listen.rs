//! `kanta mail listen`'s receiver: a small SMTP server (RFC 5321) for trying journeys out.
//!
//! It speaks EHLO/HELO, MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, VRFY, HELP
//! and QUIT; it offers no STARTTLS and no AUTH (it is for loopback), and advertises SIZE,
//! 8BITMIME and SMTPUTF8. Each message is handed to a callback with its envelope and key
//! headers, and written to `DIR/NNNN.eml` (numbered after the highest number already there).
//!
//! **Count.** With a count, exactly that many messages are taken, however many connections
//! deliver at once: the number is checked, the file written and the callback run under one
//! lock, in the order the messages complete. A message completing after the last is refused
//! with `451` (the sender keeps it), sessions are then closed with `421`, and [`serve`]
//! returns.
//!
//! **Any bytes.** A client cannot crash or stall it: lines are read with a length limit
//! (a longer command gets `500`, a longer data line makes the message too big), a message
//! over the size limit gets `552`, each read has an idle timeout, ten bad commands in a row
//! close the session, and connections beyond the limit get `421`. Text is read as bytes;
//! nothing is assumed to be UTF-8.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::headers::KeyHeaders;

/// Longest command line (RFC 5321 §4.5.3.1.4 says 512 with CRLF; clients are sloppier).
const MAX_COMMAND: usize = 2048;
/// Recipients per message.
const MAX_RECIPIENTS: usize = 100;
/// Longest address kept.
const MAX_ADDRESS: usize = 512;
/// Bad commands in a row before the session is closed.
const MAX_ERRORS: u32 = 10;
/// How long open sessions get to finish after the server stops.
const GRACE: Duration = Duration::from_secs(5);

/// How the receiver behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message, in bytes.
    pub max_size: usize,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Where `NNNN.eml` files go (created if missing); none: nothing is written.
    pub dir: Option<PathBuf>,
    /// Longest wait for a client's next line.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hostname: "localhost".into(),
            max_size: 10 * 1024 * 1024,
            count: None,
            dir: None,
            idle_timeout: Duration::from_secs(300),
            max_connections: 64,
        }
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// 1 for the first message of this run.
    pub number: u64,
    /// The `.eml` file, if written.
    pub file: Option<PathBuf>,
    /// The envelope sender (`MAIL FROM`), empty for `<>`.
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_to: Vec<String>,
    /// The message's size in bytes, as stored (dot-unstuffed, CRLF line ends).
    pub size: usize,
    /// Its key headers.
    pub headers: KeyHeaders,
}

/// Why the receiver stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The output folder cannot be created or read.
    #[error("cannot use the folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Called with each message, under the lock that numbers them; an error refuses the message.
pub type OnMessage = Box<dyn FnMut(&Received) -> io::Result<()> + Send>;

struct State {
    accepted: u64,
    next_file: u64,
    on_message: OnMessage,
}

struct Shared {
    options: Options,
    state: Mutex<State>,
    /// Set when the count is reached or the server is stopped: sessions close.
    closing: watch::Sender<bool>,
}

/// Serves SMTP on `listener` until `count` messages have been taken or `stop` completes;
/// returns how many were taken.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    on_message: OnMessage,
    stop: impl Future<Output = ()>,
) -> Result<u64, ListenError> {
    let next_file = match &options.dir {
        Some(dir) => next_file_number(dir).map_err(|source| ListenError::Folder { path: dir.clone(), source })?,
        None => 1,
    };
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (closing, mut closed) = watch::channel(options.count == Some(0));
    let shared = Arc::new(Shared { options, state: Mutex::new(State { accepted: 0, next_file, on_message }), closing });
    let mut sessions = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    match connections.clone().try_acquire_owned() {
                        Ok(permit) => {
                            sessions.spawn(async move {
                                let _permit = permit;
                                // A client that disconnects is the normal end of a session.
                                let _ = session(stream, &shared).await;
                            });
                        }
                        Err(_) => {
                            sessions.spawn(async move {
                                let mut stream = stream;
                                let _ = stream.write_all(b"421 4.7.0 too many connections, try later\r\n").await;
                            });
                        }
                    }
                }
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = closed.wait_for(|c| *c) => break,
            () = &mut stop => break,
        }
    }
    drop(listener);
    shared.closing.send_replace(true);
    let _ = tokio::time::timeout(GRACE, async { while sessions.join_next().await.is_some() {} }).await;
    sessions.abort_all();
    let accepted = shared.state.lock().unwrap_or_else(|p| p.into_inner()).accepted;
    Ok(accepted)
}

/// One past the highest `NNNN.eml` in `dir` (creating `dir`), so a new run adds files.
fn next_file_number(dir: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut highest = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let number = name.to_str().and_then(|n| n.strip_suffix(".eml")).and_then(|n| n.parse::<u64>().ok());
        highest = highest.max(number.unwrap_or(0));
    }
    Ok(highest.saturating_add(1))
}

/// A line read from the client.
enum Input {
    /// Its bytes without the line end.
    Line(Vec<u8>),
    /// Longer than allowed; the whole line was consumed.
    TooLong,
    /// End of stream, an IO error or the idle timeout.
    Gone,
    /// The server is closing.
    Closing,
}

struct Session<'a> {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    closing: watch::Receiver<bool>,
    shared: &'a Shared,
}

impl Session<'_> {
    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await?;
        self.writer.flush().await
    }

    async fn next(&mut self, max: usize) -> Input {
        let idle = self.shared.options.idle_timeout;
        tokio::select! {
            biased;
            _ = self.closing.wait_for(|c| *c) => Input::Closing,
            read = tokio::time::timeout(idle, read_line(&mut self.reader, max)) => match read {
                Ok(Ok(Some(Some(line)))) => Input::Line(line),
                Ok(Ok(Some(None))) => Input::TooLong,
                _ => Input::Gone,
            },
        }
    }
}

/// A line of at most `max` bytes without its `\n` (and `\r`): `None` at end of stream,
/// `Some(None)` for a longer line (read to its end and dropped).
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> io::Result<Option<Option<Vec<u8>>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(None);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long && line.len() + n <= max + 2 {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        reader.consume(n);
        if done {
            if too_long {
                return Ok(Some(None));
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(Some(line)));
        }
    }
}

/// The transaction in progress.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

async fn session(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let (reader, writer) = stream.into_split();
    let mut s = Session { reader: BufReader::new(reader), writer, closing: shared.closing.subscribe(), shared };
    let host = shared.options.hostname.clone();
    if *s.closing.borrow() {
        return s.reply(&format!("421 4.3.2 {host} is not taking mail any more")).await;
    }
    s.reply(&format!("220 {host} ESMTP kanta mail listen")).await?;
    let mut greeted = false;
    let mut tx = Transaction::default();
    let mut errors = 0;
    loop {
        let line = match s.next(MAX_COMMAND).await {
            Input::Line(line) => line,
            Input::TooLong => {
                s.reply("500 5.5.2 line too long").await?;
                continue;
            }
            Input::Closing => return s.reply(&format!("421 4.3.2 {host} closing (done)")).await,
            Input::Gone => return Ok(()),
        };
        let line = String::from_utf8_lossy(&line);
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        let ok = match verb.as_str() {
            "EHLO" => {
                greeted = true;
                tx = Transaction::default();
                let size = shared.options.max_size;
                s.reply(&format!("250-{host} hello\r\n250-SIZE {size}\r\n250-8BITMIME\r\n250 SMTPUTF8")).await?;
                true
            }
            "HELO" => {
                greeted = true;
                tx = Transaction::default();
                s.reply(&format!("250 {host}")).await?;
                true
            }
            "MAIL" if !greeted => reject(&mut s, "503 5.5.1 send EHLO first").await?,
            "MAIL" if tx.mail_from.is_some() => reject(&mut s, "503 5.5.1 a transaction is already open").await?,
            "MAIL" => match path(arg, "FROM:") {
                Some((from, params)) if declared_size(params) > Some(shared.options.max_size) => {
                    let _ = from;
                    reject(&mut s, "552 5.3.4 message size exceeds the limit").await?
                }
                Some((from, _)) => {
                    tx.mail_from = Some(from);
                    s.reply("250 2.1.0 OK").await?;
                    true
                }
                None => reject(&mut s, "501 5.5.4 syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if tx.mail_from.is_none() => reject(&mut s, "503 5.5.1 send MAIL first").await?,
            "RCPT" if tx.rcpt_to.len() >= MAX_RECIPIENTS => reject(&mut s, "452 4.5.3 too many recipients").await?,
            "RCPT" => match path(arg, "TO:") {
                Some((to, _)) if !to.is_empty() => {
                    tx.rcpt_to.push(to);
                    s.reply("250 2.1.5 OK").await?;
                    true
                }
                _ => reject(&mut s, "501 5.5.4 syntax: RCPT TO:<address>").await?,
            },
            "DATA" if tx.rcpt_to.is_empty() => reject(&mut s, "503 5.5.1 send RCPT first").await?,
            "DATA" => {
                s.reply("354 end data with <CR><LF>.<CR><LF>").await?;
                let Some(data) = read_data(&mut s).await? else { return Ok(()) };
                let reply = match data {
                    Data::TooBig => "552 5.3.4 message size exceeds the limit".to_string(),
                    Data::Message(bytes) => deliver(shared, &tx, bytes),
                };
                tx = Transaction::default();
                s.reply(&reply).await?;
                true
            }
            "RSET" => {
                tx = Transaction::default();
                s.reply("250 2.0.0 OK").await?;
                true
            }
            "NOOP" => {
                s.reply("250 2.0.0 OK").await?;
                true
            }
            "VRFY" => {
                s.reply("252 2.5.0 cannot verify, but will accept").await?;
                true
            }
            "HELP" => {
                s.reply("214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT").await?;
                true
            }
            "QUIT" => return s.reply(&format!("221 2.0.0 {host} closing")).await,
            "STARTTLS" | "AUTH" | "BDAT" | "EXPN" | "ETRN" => reject(&mut s, "502 5.5.1 not implemented").await?,
            _ => reject(&mut s, "500 5.5.2 command not recognised").await?,
        };
        errors = if ok { 0 } else { errors + 1 };
        if errors >= MAX_ERRORS {
            return s.reply("421 4.7.0 too many errors, closing").await;
        }
    }
}

/// Replies `text` and reports a bad command.
async fn reject(s: &mut Session<'_>, text: &str) -> io::Result<bool> {
    s.reply(text).await?;
    Ok(false)
}

/// The address in `FROM:<a@b> PARAMS` (keyword case-insensitive, the brackets optional) and
/// the parameters after it.
fn path<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let (address, params) = match rest.strip_prefix('<') {
        Some(inner) => {
            let end = inner.find('>')?;
            (&inner[..end], &inner[end + 1..])
        }
        None => rest.split_once(' ').unwrap_or((rest, "")),
    };
    if address.len() > MAX_ADDRESS || address.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some((address.to_string(), params.trim()))
}

/// `SIZE=n` among MAIL's parameters.
fn declared_size(params: &str) -> Option<usize> {
    params.split_whitespace().find_map(|p| {
        let (key, value) = p.split_once('=')?;
        if key.eq_ignore_ascii_case("SIZE") { value.parse().ok() } else { None }
    })
}

enum Data {
    Message(Vec<u8>),
    TooBig,
}

/// The message after `354`, up to the line `.`: dot-unstuffed, lines ended with CRLF.
/// `None` when the client went away or the server is closing.
async fn read_data(s: &mut Session<'_>) -> io::Result<Option<Data>> {
    let max = s.shared.options.max_size;
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let line = match s.next(max).await {
            Input::Line(line) => line,
            Input::TooLong => {
                too_big = true;
                data = Vec::new();
                continue;
            }
            Input::Closing => {
                s.reply("421 4.3.2 closing (done)").await?;
                return Ok(None);
            }
            Input::Gone => return Ok(None),
        };
        if line == b"." {
            return Ok(Some(if too_big { Data::TooBig } else { Data::Message(data) }));
        }
        if too_big {
            continue;
        }
        // RFC 5321 §4.5.2: a line that starts with a dot had one added by the sender.
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() + 2 > max {
            too_big = true;
            data = Vec::new();
            continue;
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
}

/// Takes one complete message: numbered, written and reported under the lock; the reply.
fn deliver(shared: &Shared, tx: &Transaction, data: Vec<u8>) -> String {
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if shared.options.count.is_some_and(|count| state.accepted >= count) {
        return "451 4.3.2 kanta mail listen has taken its --count messages; try later".into();
    }
    let file = shared.options.dir.as_ref().map(|dir| dir.join(format!("{:04}.eml", state.next_file)));
    if let Some(file) = &file {
        if let Err(e) = std::fs::write(file, &data) {
            tracing::warn!("cannot write {}: {e}", file.display());
            return "451 4.3.0 cannot store the message".into();
        }
        state.next_file += 1;
    }
    let received = Received {
        number: state.accepted + 1,
        file,
        mail_from: tx.mail_from.clone().unwrap_or_default(),
        rcpt_to: tx.rcpt_to.clone(),
        size: data.len(),
        headers: KeyHeaders::of(&data),
    };
    if let Err(e) = (state.on_message)(&received) {
        tracing::warn!("cannot report message {}: {e}", received.number);
        return "451 4.3.0 cannot report the message".into();
    }
    state.accepted += 1;
    if shared.options.count.is_some_and(|count| state.accepted >= count) {
        shared.closing.send_replace(true);
    }
    format!("250 2.0.0 OK: queued as {}", received.number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sizes_parse_leniently_but_safely() {
        assert_eq!(path("FROM:<a@b> SIZE=10", "FROM:"), Some(("a@b".into(), "SIZE=10")));
        assert_eq!(path("from: <> BODY=8BITMIME", "FROM:"), Some(("".into(), "BODY=8BITMIME")));
        assert_eq!(path("TO:a@b", "TO:"), Some(("a@b".into(), "")));
        for bad in ["", "FROM", "TO:<a@b>", "FROM:<a@b", "FROM:<a b>", "FRÖM:<a>", "é"] {
            assert_eq!(path(bad, "FROM:"), None, "{bad}");
        }
        assert_eq!(declared_size("BODY=8BITMIME size=1234"), Some(1234));
        assert_eq!(declared_size("SIZE=x"), None);
    }

    #[tokio::test]
    async fn lines_are_read_with_a_limit() {
        let input: &[u8] = b"short\r\nlong-long-long\r\nbare\nlast-without-end";
        let mut reader = BufReader::with_capacity(4, input);
        assert_eq!(read_line(&mut reader, 8).await.unwrap(), Some(Some(b"short".to_vec())));
        assert_eq!(read_line(&mut reader, 8).await.unwrap(), Some(None));
        assert_eq!(read_line(&mut reader, 8).await.unwrap(), Some(Some(b"bare".to_vec())));
        assert_eq!(read_line(&mut reader, 8).await.unwrap(), None);
    }
}
