//! Webhook signatures: `Kanta-Signature: t=TIMESTAMP,v1=HEX`, where `HEX` is the lowercase
//! hex HMAC-SHA256 (RFC 2104 over FIPS 180-4 SHA-256) of `TIMESTAMP.BODY` under the endpoint's
//! secret, and `TIMESTAMP` is Unix seconds at sending.
//!
//! Signing the timestamp with the body lets a receiver refuse replays: it recomputes the MAC,
//! compares in constant time, and rejects a timestamp outside its tolerance (5 minutes is
//! usual). The scheme is Stripe's, so receivers written for it need only the header name.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "kanta-signature";

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    #[error("the signature header is not `t=TIMESTAMP,v1=HEX`: `{0}`")]
    Malformed(String),
    /// The timestamp is further in the past than the tolerance.
    #[error(
        "the request is too old: its timestamp {timestamp} is {age} s before the receiver's clock (tolerance {tolerance} s)"
    )]
    TooOld {
        /// Signed time, Unix seconds.
        timestamp: i64,
        /// How far before now, seconds.
        age: i64,
        /// Allowed distance, seconds.
        tolerance: i64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error(
        "the request is from the future: its timestamp {timestamp} is {ahead} s after the receiver's clock (tolerance {tolerance} s)"
    )]
    FromTheFuture {
        /// Signed time, Unix seconds.
        timestamp: i64,
        /// How far after now, seconds.
        ahead: i64,
        /// Allowed distance, seconds.
        tolerance: i64,
    },
    /// No `v1` value matches the body and the secret.
    #[error("the signature does not match the timestamp and the body")]
    Mismatch,
}

/// Check a signed timestamp (Unix seconds) against `now`: at most `tolerance` seconds either way.
pub fn check_timestamp(timestamp: i64, now: i64, tolerance: i64) -> Result<(), SignatureError> {
    let age = now.saturating_sub(timestamp);
    if age > tolerance {
        Err(SignatureError::TooOld { timestamp, age, tolerance })
    } else if age < -tolerance {
        Err(SignatureError::FromTheFuture { timestamp, ahead: age.saturating_neg(), tolerance })
    } else {
        Ok(())
    }
}

/// HMAC-SHA256 under `secret` of `timestamp`, a `.`, and `body` — the signed payload of both
/// `Kanta-Signature` (with the timestamp as decimal digits) and the inbound `hmac-sha256` mode
/// (with the timestamp header's text as sent).
pub fn timestamped_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (longer ones are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A verified `Kanta-Signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed time, Unix seconds.
    pub timestamp: i64,
    /// The MAC that matched (of `timestamp.body`): the request's identity for replay checks,
    /// whatever else the header carries.
    pub mac: Vec<u8>,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    timestamped_mac(secret, &timestamp.to_string(), body)
}

/// The `Kanta-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", kanta_store::token::hex(&digest))
}

/// Check a `Kanta-Signature` header against `body`, at `now` (Unix seconds), accepting
/// timestamps up to `tolerance` seconds away. Several `v1=` values may be present (while a
/// secret is rotated); one matching is enough. The comparison is constant-time. A timestamp
/// outside the tolerance is refused as [`SignatureError::TooOld`] or
/// [`SignatureError::FromTheFuture`] before the MAC is checked.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), SignatureError> {
    verified(secret, header, body, now, tolerance).map(|_| ())
}

/// [`verify`], returning the timestamp and the matching MAC.
pub fn verified(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<Verified, SignatureError> {
    let malformed = || SignatureError::Malformed(header.chars().take(200).collect());
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| malformed())?),
            Some(("v1", hex)) => candidates.push(decode_hex(hex).ok_or_else(malformed)?),
            Some(_) => {}
            None => return Err(malformed()),
        }
    }
    let timestamp = timestamp.ok_or_else(malformed)?;
    if candidates.is_empty() {
        return Err(malformed());
    }
    check_timestamp(timestamp, now, tolerance)?;
    let expected = mac(secret, timestamp, body);
    if candidates.iter().any(|c| expected.clone().verify_slice(c).is_ok()) {
        Ok(Verified { timestamp, mac: expected.finalize().into_bytes().to_vec() })
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Bytes from hex digits (either case); `None` for an odd length or a non-hex character.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.as_bytes().chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("any key length");
        mac.update(b"what do ya want for nothing?");
        let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn signatures_sign_the_timestamp_dot_body() {
        // Independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test_secret_123
        let header = sign(b"whsec_test_secret_123", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(header, "t=1700000000,v1=e89dcbfdce3392fb275033fb083d8c81e095a63bf687d9a2cd50e7d5f55e21f6");
    }

    #[test]
    fn verification_accepts_the_signed_body_and_refuses_everything_else() {
        let secret = b"whsec_test_secret_123";
        let body = br#"{"id":"stage_change:1"}"#;
        let header = sign(secret, 1_700_000_000, body);
        assert_eq!(verify(secret, &header, body, 1_700_000_100, 300), Ok(()));
        // A rotated secret: the old signature beside the new one.
        let other = sign(b"other secret, 16+", 1_700_000_000, body);
        let both = format!("{header},v1={}", other.split_once(",v1=").expect("a v1").1);
        assert_eq!(verify(secret, &both, body, 1_700_000_000, 300), Ok(()));
        assert_eq!(
            verify(secret, &header, br#"{"id":"stage_change:2"}"#, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"another secret!!", &header, body, 1_700_000_000, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(secret, &header, body, 1_700_000_300, 300), Ok(()), "the edge of the window");
        let old = verify(secret, &header, body, 1_700_000_301, 300);
        assert_eq!(old, Err(SignatureError::TooOld { timestamp: 1_700_000_000, age: 301, tolerance: 300 }));
        assert!(old.expect_err("too old").to_string().starts_with("the request is too old"));
        let future = verify(secret, &header, body, 1_699_999_000, 300);
        assert_eq!(
            future,
            Err(SignatureError::FromTheFuture { timestamp: 1_700_000_000, ahead: 1000, tolerance: 300 })
        );
        assert!(future.expect_err("ahead").to_string().starts_with("the request is from the future"));
        // A stale request with a wrong signature is still reported as stale, not as a mismatch.
        assert!(matches!(
            verify(b"another secret!!", &header, body, 1_700_001_000, 300),
            Err(SignatureError::TooOld { .. })
        ));
        // The verified MAC is the request's identity: the same with a second v1 beside it.
        let one = verified(secret, &header, body, 1_700_000_000, 300).expect("valid");
        let two = verified(secret, &both, body, 1_700_000_000, 300).expect("valid");
        assert_eq!((one.timestamp, &one.mac), (1_700_000_000, &two.mac));
        assert_eq!(kanta_store::token::hex(&one.mac), header.split_once(",v1=").expect("a v1").1);
        // The timestamp is inside the MAC: moving it breaks the signature.
        let moved = header.replace("t=1700000000", "t=1700000050");
        assert_eq!(verify(secret, &moved, body, 1_700_000_050, 300), Err(SignatureError::Mismatch));
        for bad in ["", "v1=00", "t=1700000000", "t=x,v1=00", "t=1700000000,v1=0g", "t=1700000000,v1=abc", "garbage"] {
            assert!(
                matches!(verify(secret, bad, body, 1_700_000_000, 300), Err(SignatureError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
