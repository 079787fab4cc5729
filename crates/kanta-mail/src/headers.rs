//! Reading a received message's headers (for `kanta mail listen` and tests): the header block
//! unfolded, and RFC 2047 encoded words decoded for display.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The headers `kanta mail listen` prints, decoded for reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHeaders {
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `From`.
    pub from: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `List-Unsubscribe`.
    pub list_unsubscribe: Option<String>,
    /// `List-Unsubscribe-Post`.
    pub list_unsubscribe_post: Option<String>,
}

impl KeyHeaders {
    /// The key headers of `message`, the first of each, with encoded words decoded.
    pub fn of(message: &[u8]) -> KeyHeaders {
        let all = headers(message);
        let get =
            |name: &str| all.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| decode_encoded_words(v));
        KeyHeaders {
            message_id: get("Message-ID"),
            from: get("From"),
            to: get("To"),
            subject: get("Subject"),
            list_unsubscribe: get("List-Unsubscribe"),
            list_unsubscribe_post: get("List-Unsubscribe-Post"),
        }
    }

    /// `(name, value)` of each header present, in the order printed.
    pub fn present(&self) -> Vec<(&'static str, &str)> {
        [
            ("Message-ID", &self.message_id),
            ("From", &self.from),
            ("To", &self.to),
            ("Subject", &self.subject),
            ("List-Unsubscribe", &self.list_unsubscribe),
            ("List-Unsubscribe-Post", &self.list_unsubscribe_post),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// Every header of `message` (up to the first empty line) as `(name, value)`, continuation
/// lines unfolded, bytes that are not UTF-8 replaced. Lines without a colon are skipped.
pub fn headers(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// `text` with RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?UTF-8?Q?…?=`, also `us-ascii` and
/// `iso-8859-1`) decoded; white space between two encoded words is dropped, as the RFC says.
/// Words in other charsets, or that do not decode, are kept as written.
pub fn decode_encoded_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match decode_word(candidate) {
            Some((decoded, len)) => {
                if !(after_word && before.chars().all(char::is_whitespace)) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[len..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The encoded word at the start of `text` (`=?charset?enc?data?=`): its text and length.
fn decode_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let data = &inner[..end];
    if data.contains(char::is_whitespace) {
        return None;
    }
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    // RFC 2231 allows a language after `*`: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset).to_ascii_lowercase();
    let bytes = match encoding {
        "B" | "b" => STANDARD.decode(data).ok()?,
        "Q" | "q" => decode_q(data)?,
        _ => return None,
    };
    let decoded = match charset.as_str() {
        "utf-8" | "us-ascii" => String::from_utf8(bytes).ok()?,
        "iso-8859-1" | "latin1" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => return None,
    };
    Some((decoded, len))
}

fn decode_q(data: &str) -> Option<Vec<u8>> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded_and_stop_at_the_body() {
        let message = b"Subject: a\r\n long\r\n\tsubject\r\nFrom: x@y\r\nbroken line\r\n\r\nBody: not a header\r\n";
        assert_eq!(
            headers(message),
            vec![("Subject".to_string(), "a long subject".to_string()), ("From".into(), "x@y".into())]
        );
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(decode_encoded_words("=?utf-8?b?R3LDvMOfZQ==?="), "Grüße");
        assert_eq!(decode_encoded_words("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_Ana?= <a@b>"), "Grüße Ana <a@b>");
        assert_eq!(decode_encoded_words("=?utf-8?b?R3LDvA==?= =?utf-8?b?w59l?="), "Grüße", "joined");
        assert_eq!(decode_encoded_words("a =?iso-8859-1?q?=E9?= b"), "a é b");
        for kept in ["=?koi8-r?b?xx?=", "=?utf-8?x?y?=", "=?utf-8?b?!!?=", "=?", "a=?b", "=?utf-8?q?=ZZ?="] {
            assert_eq!(decode_encoded_words(kept), kept);
        }
    }

    #[test]
    fn key_headers_are_found_whatever_their_case() {
        let message = b"message-id: <k@d>\r\nSUBJECT: =?utf-8?b?w6k=?=\r\nList-Unsubscribe: <https://u>\r\n\r\n";
        let key = KeyHeaders::of(message);
        assert_eq!(key.present(), vec![("Message-ID", "<k@d>"), ("Subject", "é"), ("List-Unsubscribe", "<https://u>")]);
    }
}
