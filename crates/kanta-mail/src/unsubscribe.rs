//! Signed unsubscribe tokens and the links that carry them.
//!
//! A token is `PAYLOAD.MAC`, both base64url without padding (RFC 4648 §5): `PAYLOAD` is
//! `CHANNEL \n ISSUED_AT \n CUSTOMER_ID` (the channel's name, Unix seconds, the customer's
//! external id — which never holds a control character, so `\n` cannot be forged into it), and
//! `MAC` is HMAC-SHA256 under the configured secret of `kanta-unsubscribe-v1\n` followed by the
//! payload. The prefix keeps these MACs apart from anything else the same secret might sign.
//!
//! Verification decodes strictly (non-canonical base64 is refused, so no two texts carry the
//! same token), compares the MAC in constant time, and only then reads the payload.
//!
//! Tokens do not expire: an unsubscribe link must keep working long after the message was sent
//! (CAN-SPAM: at least 30 days; people find old mail), and replaying a valid token can do
//! nothing worse than unsubscribe the customer it was made for, again. The issue time is
//! returned so a caller can still show or log it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use kanta_domain::Timestamp;
use sha2::Sha256;

/// The path under `public_url` that `kanta serve` answers for unsubscribe links.
pub const PATH: &str = "/unsubscribe/";

/// Shortest accepted signing secret, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// Domain separation for the MAC.
const CONTEXT: &[u8] = b"kanta-unsubscribe-v1\n";

/// The channel a token unsubscribes from: the consent channel of the customer records, so a
/// verified token names exactly what the unsubscribe page revokes.
pub use kanta_domain::record::Channel;

/// The channel named in a token's payload (its stored name, [`Channel::as_str`]).
fn parse_channel(text: &str) -> Option<Channel> {
    [Channel::Email, Channel::Sms].into_iter().find(|c| c.as_str() == text)
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsubscribeError {
    /// The signing secret is too short.
    #[error("the unsubscribe secret must be at least {MIN_KEY_BYTES} bytes, not {0}")]
    KeyTooShort(usize),
    /// Not `PAYLOAD.MAC` in base64url, or a payload that is not channel, time and id.
    #[error("not an unsubscribe token")]
    Malformed,
    /// Well formed, but not signed with this secret (changed, or made elsewhere).
    #[error("the unsubscribe token's signature does not match")]
    BadSignature,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The customer's external id.
    pub customer: String,
    /// The channel to unsubscribe from.
    pub channel: Channel,
    /// When the token was made (whole seconds).
    pub issued_at: Timestamp,
}

/// The secret that signs unsubscribe tokens; `Debug` hides it.
#[derive(Clone)]
pub struct UnsubscribeKey(Vec<u8>);

impl std::fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKey(***)")
    }
}

impl UnsubscribeKey {
    /// A key of at least [`MIN_KEY_BYTES`] bytes.
    pub fn new(secret: &[u8]) -> Result<UnsubscribeKey, UnsubscribeError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(UnsubscribeError::KeyTooShort(secret.len()));
        }
        Ok(UnsubscribeKey(secret.to_vec()))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length (longer ones are hashed first), so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(CONTEXT);
        mac.update(payload);
        mac
    }

    /// A token unsubscribing `customer` (an external id) from `channel`, made at `issued_at`.
    pub fn sign(&self, customer: &str, channel: Channel, issued_at: Timestamp) -> String {
        let payload = format!("{}\n{}\n{customer}", channel.as_str(), issued_at.micros().div_euclid(1_000_000));
        let mac = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(mac))
    }

    /// What `token` says, if this key signed it.
    pub fn verify(&self, token: &str) -> Result<Unsubscribed, UnsubscribeError> {
        let (payload, mac) = token.split_once('.').ok_or(UnsubscribeError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| UnsubscribeError::Malformed)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| UnsubscribeError::Malformed)?;
        self.mac(&payload).verify_slice(&mac).map_err(|_| UnsubscribeError::BadSignature)?;
        // Signed by us, so well formed unless the signing code changed; checked all the same.
        let payload = String::from_utf8(payload).map_err(|_| UnsubscribeError::Malformed)?;
        let mut parts = payload.splitn(3, '\n');
        let channel = parts.next().and_then(parse_channel).ok_or(UnsubscribeError::Malformed)?;
        let seconds: i64 = parts.next().and_then(|s| s.parse().ok()).ok_or(UnsubscribeError::Malformed)?;
        let customer = parts.next().filter(|c| !c.is_empty()).ok_or(UnsubscribeError::Malformed)?;
        Ok(Unsubscribed {
            customer: customer.to_string(),
            channel,
            issued_at: Timestamp::from_micros(seconds.saturating_mul(1_000_000)),
        })
    }
}

/// The link for `token`: `public_url` (without a trailing `/`) + [`PATH`] + the token, which is
/// base64url and `.` only, so it needs no escaping.
pub fn unsubscribe_url(public_url: &str, token: &str) -> String {
    format!("{}{PATH}{token}", public_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUED: Timestamp = Timestamp::from_micros(1_700_000_000_000_000);

    fn key() -> UnsubscribeKey {
        UnsubscribeKey::new(b"0123456789abcdef-test").unwrap()
    }

    #[test]
    fn a_token_round_trips_with_its_customer_channel_and_time() {
        for (customer, channel) in
            [("c-1", Channel::Email), ("Zoë: a.b\tc", Channel::Sms), ("x".repeat(256).as_str(), Channel::Email)]
        {
            let token = key().sign(customer, channel, ISSUED);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
            let back = key().verify(&token).unwrap();
            assert_eq!(back, Unsubscribed { customer: customer.into(), channel, issued_at: ISSUED });
        }
        // Pinned, so a change of format is a decision and not an accident: links already sent
        // must keep verifying.
        let token = key().sign("c-1", Channel::Email, ISSUED);
        assert_eq!(token.split_once('.').unwrap().0, "ZW1haWwKMTcwMDAwMDAwMApjLTE");
    }

    #[test]
    fn changing_any_byte_of_a_token_is_refused() {
        let token = key().sign("customer-42", Channel::Email, ISSUED);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
        for at in 0..token.len() {
            for &c in alphabet {
                let mut bytes = token.clone().into_bytes();
                if bytes[at] == c {
                    continue;
                }
                bytes[at] = c;
                let tampered = String::from_utf8(bytes).unwrap();
                let result = key().verify(&tampered);
                assert!(
                    matches!(result, Err(UnsubscribeError::Malformed | UnsubscribeError::BadSignature)),
                    "{tampered}: {result:?}"
                );
            }
        }
        // Cut short or extended.
        assert!(key().verify(&token[..token.len() - 1]).is_err());
        assert!(key().verify(&format!("{token}A")).is_err());
        assert_eq!(key().verify(""), Err(UnsubscribeError::Malformed));
    }

    #[test]
    fn another_secret_refuses_the_token() {
        let token = key().sign("customer-42", Channel::Email, ISSUED);
        let other = UnsubscribeKey::new(b"0123456789abcdef-other").unwrap();
        assert_eq!(other.verify(&token), Err(UnsubscribeError::BadSignature));
        assert_eq!(UnsubscribeKey::new(b"short").unwrap_err(), UnsubscribeError::KeyTooShort(5));
        assert_eq!(format!("{:?}", key()), "UnsubscribeKey(***)");
    }

    #[test]
    fn the_link_is_the_public_url_the_path_and_the_token() {
        assert_eq!(unsubscribe_url("https://shop.example/", "abc.def"), "https://shop.example/unsubscribe/abc.def");
        assert_eq!(unsubscribe_url("https://shop.example/k", "abc.def"), "https://shop.example/k/unsubscribe/abc.def");
    }
}
