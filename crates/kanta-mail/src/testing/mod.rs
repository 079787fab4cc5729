//! A real SMTP server for the tests of kanta-mail and of the crates that send through it
//! (behind the `testing` feature): aiosmtpd (PyPI, pinned in `scripts/install-test-deps`,
//! installed into `target/test-tools/venv`) on a free loopback port, writing each message to a
//! Maildir the test reads back. Killed when dropped.
//!
//! Test support: a failed setup (no venv, no `openssl`, a server that does not start) panics
//! with what to do, which ends the test that asked for it.
#![allow(clippy::unwrap_used, reason = "test support: a failed setup ends the test that asked for it")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv `scripts/install-test-deps` fills.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/venv");
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "aiosmtpd is not installed in {}: run scripts/install-test-deps (the email tests send to a real SMTP server)",
        venv.display()
    );
    python
}

/// A self-signed certificate for 127.0.0.1 and localhost, made with the `openssl` command
/// (installed by `scripts/install-test-deps`): `(cert.pem, key.pem)` in `dir`.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // An end-entity certificate: rustls refuses a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (run scripts/install-test-deps)");
    assert!(output.status.success(), "openssl: {}", String::from_utf8_lossy(&output.stderr));
    (cert, key)
}

/// A running aiosmtpd.
pub struct Smtpd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it writes messages.
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    /// `python -m aiosmtpd -n -l 127.0.0.1:PORT ARGS… -c aiosmtpd.handlers.Mailbox MAILDIR`:
    /// aiosmtpd's own command line (`--tlscert/--tlskey` for STARTTLS, `--smtpscert/--smtpskey`
    /// for implicit TLS).
    pub fn cli(args: &[&str]) -> Smtpd {
        Smtpd::start(|python, listen, maildir| {
            let mut command = Command::new(python);
            command.args(["-m", "aiosmtpd", "-n", "-l", listen]).args(args);
            command.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(maildir);
            command
        })
    }

    /// `smtpd.py` beside this module: aiosmtpd with AUTH (`--auth USER:PASSWORD`) or refused recipients
    /// (`--reject ADDRESS=REPLY`).
    pub fn script(args: &[&str]) -> Smtpd {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testing/smtpd.py");
        Smtpd::start(|python, listen, maildir| {
            let mut command = Command::new(python);
            command.arg(&script).arg(listen).arg(maildir).args(args);
            command
        })
    }

    fn start(command: impl FnOnce(&Path, &str, &Path) -> Command) -> Smtpd {
        let python = python();
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        // A free port: bound and released; aiosmtpd takes it a moment later.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = command(&python, &listen, &maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(&listen).is_ok() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
                }
                panic!("aiosmtpd exited ({status}) before listening on {listen}:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {listen} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtpd { child, port, maildir, _dir: dir }
    }

    /// The messages in the Maildir (`new/`), oldest first (Maildir names start with the time).
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
