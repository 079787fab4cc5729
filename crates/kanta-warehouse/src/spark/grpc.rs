//! A gRPC client call over HTTP/2 on one connection (hyper's client): the length-prefixed
//! messages of a server-streaming call and the status in its trailers. Plaintext, for a
//! Spark Connect server on a private network or loopback; put TLS in front of it with a proxy.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The connection could not be made or broke.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a non-OK status.
    #[error("{message}")]
    Status {
        /// The gRPC status code.
        code: u32,
        /// Its message.
        message: String,
    },
    /// The caller refused a message.
    #[error("{0}")]
    Caller(String),
}

/// One HTTP/2 connection.
pub struct Channel {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Channel {
    /// Connects to `host:port`.
    pub async fn connect(host: &str, port: u16) -> Result<Channel, GrpcError> {
        let tcp =
            tokio::net::TcpStream::connect((host, port)).await.map_err(|e| GrpcError::Transport(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(8 << 20)
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| GrpcError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "kanta::warehouse", error = %e, "Spark Connect connection closed");
            }
        });
        Ok(Channel { sender, authority: format!("{host}:{port}") })
    }

    /// Calls `path` with `request` and hands every message of the response stream to
    /// `message`, in order.
    pub async fn server_streaming<Req: prost::Message, Resp: prost::Message + Default>(
        &mut self,
        path: &str,
        request: &Req,
        message: &mut (dyn FnMut(Resp) -> Result<(), String> + Send),
    ) -> Result<(), GrpcError> {
        let encoded = request.encode_to_vec();
        let mut body = BytesMut::with_capacity(encoded.len() + 5);
        body.extend_from_slice(&[0]);
        body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        body.extend_from_slice(&encoded);
        let request = hyper::Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc+proto")
            .header("te", "trailers")
            .body(Full::new(body.freeze()))
            .map_err(|e| GrpcError::Transport(e.to_string()))?;
        self.sender.ready().await.map_err(|e| GrpcError::Transport(e.to_string()))?;
        let response = self.sender.send_request(request).await.map_err(|e| GrpcError::Transport(e.to_string()))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(GrpcError::Transport(format!("HTTP status {}", response.status())));
        }
        // A call that fails at once answers with its status in the headers (trailers-only).
        let mut status_seen = response.headers().contains_key("grpc-status");
        status(response.headers())?;
        let mut body = response.into_body();
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| GrpcError::Transport(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                buffer.extend_from_slice(data);
                while buffer.len() >= 5 {
                    if buffer[0] != 0 {
                        return Err(GrpcError::Transport("the server sent a compressed message".into()));
                    }
                    let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
                    if buffer.len() < 5 + len {
                        break;
                    }
                    buffer.advance(5);
                    let bytes = buffer.split_to(len);
                    let decoded = Resp::decode(bytes.freeze()).map_err(|e| GrpcError::Transport(e.to_string()))?;
                    message(decoded).map_err(GrpcError::Caller)?;
                }
            } else if let Some(trailers) = frame.trailers_ref() {
                status_seen |= trailers.contains_key("grpc-status");
                status(trailers)?;
            }
        }
        if !status_seen {
            return Err(GrpcError::Transport("the response ended without a gRPC status".into()));
        }
        Ok(())
    }
}

/// Headers or trailers without `grpc-status` say nothing; a status other than 0 is an error.
fn status(headers: &hyper::HeaderMap) -> Result<(), GrpcError> {
    let Some(code) = headers.get("grpc-status") else { return Ok(()) };
    let code: u32 = code.to_str().ok().and_then(|c| c.parse().ok()).unwrap_or(2);
    if code == 0 {
        return Ok(());
    }
    let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).map(percent_decode).unwrap_or_default();
    Err(GrpcError::Status { code, message })
}

/// gRPC's percent-encoding of `grpc-message`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b%25c"), "a b%c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }
}
