//! The mailer's connections: lettre's [`AsyncSmtpConnection`]s over sockets kanta opens itself,
//! with `TCP_NODELAY`, kept for reuse.
//!
//! **Why not lettre's transport and pool.** lettre writes a message's body and its final
//! `\r\n.\r\n` in two writes and never sets `TCP_NODELAY` on the sockets it opens, so Nagle's
//! algorithm holds the five-byte terminator until the server acknowledges the body, and servers
//! delay that acknowledgement (40 ms on Linux): every message waited about 40 ms, whatever the
//! server. lettre builds a connection over any stream we hand it
//! ([`AsyncSmtpConnection::connect_with_transport`]), so kanta opens the TCP connection (and for
//! `smtps://` the TLS session, with rustls as lettre does), sets `TCP_NODELAY`, and lets lettre
//! speak SMTP over it: EHLO, STARTTLS, AUTH and the message exchange stay lettre's.
//!
//! Measured with `examples/bare_send.rs` (debug build, 2,000 messages of 994 bytes to
//! aiosmtpd's `Sink` on loopback, on a shared 2-core machine, one or two runs each): over one
//! connection lettre's transport sent 22 messages a second (the 40 ms stall, every message) and
//! this pool 527 to 1,033; over eight, 159 to 175 against 575 to 1,458, where the Python sink's
//! one core and the other work on the machine are the limit rather than the client.
//!
//! A connection is reused only after a `NOOP` shows it alive, and only within [`MAX_IDLE`] of
//! its last use; one that saw any error, or whose send ran out of time, is never returned (a late
//! reply would be read as the answer to the next command).

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::settings::{EmailConfig, Security};

/// An idle connection older than this is closed rather than reused (servers drop idle clients
/// after a few minutes; RFC 5321 §4.5.3.2.7 asks them to wait at least 5).
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(60);

/// How long an idle connection may take to answer the `NOOP` before it is given up for a new
/// one (a loopback or LAN server answers in milliseconds).
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Why no connection could be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Nothing reached the SMTP dialogue: no TCP connection, no TLS session, or no greeting in
    /// time. Nothing of a message was sent.
    Unreachable(String),
    /// lettre's SMTP dialogue refused (EHLO, STARTTLS, AUTH).
    Smtp(lettre::transport::smtp::Error),
}

/// Why the pool cannot be set up from the settings.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// lettre's TLS parameters.
    #[error(transparent)]
    Lettre(#[from] lettre::transport::smtp::Error),
    /// rustls' configuration for implicit TLS.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Connections to the configured server: opened on demand, reused while alive.
pub(crate) struct Pool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// For STARTTLS (lettre's upgrade).
    starttls: TlsParameters,
    /// For `smtps://`: TLS from the first byte.
    implicit: Option<TlsConnector>,
    timeout: Duration,
    /// Connections between messages, each with when it was last used. Tokio's clock, not the
    /// system's: it is the runtime's (the same one the send timeouts run on), and a test can
    /// move it past [`MAX_IDLE`] without waiting a minute.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    opened: AtomicU64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for the checked settings; connects lazily.
    pub(crate) fn new(config: &EmailConfig) -> Result<Pool, SetupError> {
        let server = &config.server;
        let mut starttls = TlsParameters::builder(server.host.clone());
        if let Some(pem) = &config.ca_pem {
            starttls = starttls.add_root_certificate(Certificate::from_pem(pem)?);
        }
        let implicit = match server.security {
            Security::ImplicitTls => Some(implicit_tls(config.ca_pem.as_deref())?),
            Security::StartTlsWhenOffered | Security::StartTlsRequired => None,
        };
        Ok(Pool {
            host: server.host.clone(),
            port: server.port,
            security: server.security,
            credentials: server
                .credentials
                .as_ref()
                .map(|c| Credentials::new(c.user.clone(), c.expose_password().to_string())),
            // EHLO names the sender's domain: this process has no public host name of its own
            // to give, and servers use the name for logging only.
            hello: ClientId::Domain(config.from.email.domain().to_string()),
            starttls: starttls.build_rustls()?,
            implicit,
            timeout: config.timeout,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        })
    }

    /// Connections opened so far (reuse keeps this low).
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// An idle connection that answers `NOOP`, or a new one.
    pub(crate) async fn get(&self) -> Result<AsyncSmtpConnection, OpenError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some((mut connection, since)) = idle else { break };
            // The NOOP and the QUIT have a short limit of their own: a connection the network
            // dropped silently must cost a moment, not the send's whole timeout.
            let check = self.timeout.min(IDLE_CHECK);
            if since.elapsed() <= MAX_IDLE
                && tokio::time::timeout(check, connection.test_connected()).await.unwrap_or(false)
            {
                return Ok(connection);
            }
            // Dead or too old: closed (QUIT if it still listens), and the next one is tried.
            let _ = tokio::time::timeout(check, connection.abort()).await;
        }
        self.open().await
    }

    /// Keeps `connection` for the next message; only after a completed exchange.
    pub(crate) fn put(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push((connection, Instant::now()));
    }

    /// A new connection: TCP (and TLS for `smtps://`) within the timeout, then EHLO, STARTTLS
    /// when offered (or required), AUTH when configured.
    pub(crate) async fn open(&self) -> Result<AsyncSmtpConnection, OpenError> {
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(connected) => connected,
            Err(_) => Err(OpenError::Unreachable(format!(
                "Connection error: no SMTP greeting within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, OpenError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| OpenError::Unreachable(format!("Connection error: {e}")))?;
        // The point of this module: see its documentation.
        tcp.set_nodelay(true).map_err(|e| OpenError::Unreachable(format!("Connection error: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| OpenError::Unreachable(format!("TLS error: {e}")))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| OpenError::Unreachable(format!("TLS error: {e}")))?;
                Box::new(Tls(tls))
            }
            None => Box::new(tcp),
        };
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await.map_err(OpenError::Smtp)?;
        let starttls = match self.security {
            Security::StartTlsRequired => true,
            Security::StartTlsWhenOffered => connection.can_starttls(),
            Security::ImplicitTls => false,
        };
        if starttls {
            connection.starttls(self.starttls.clone(), &self.hello).await.map_err(OpenError::Smtp)?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await.map_err(OpenError::Smtp)?;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(connection)
    }
}

/// rustls for `smtps://`: the system's roots and the configured CA file, ring as the provider
/// (what lettre's `tokio1-rustls` with `ring` and `rustls-native-certs` uses for STARTTLS).
fn implicit_tls(ca_pem: Option<&[u8]>) -> Result<TlsConnector, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as lettre does.
        let _ = roots.add(cert);
    }
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| SetupError::Tls(format!("ca_file: {e}")))?;
            roots.add(cert).map_err(|e| SetupError::Tls(format!("ca_file: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A TLS session over TCP, as lettre takes a stream.
#[derive(Debug)]
struct Tls(TlsStream<TcpStream>);

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Tls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
