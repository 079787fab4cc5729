//! One module per page. Handlers read the store, turn numbers into text with the configured
//! [`kanta_report::format::NumberFormat`], and hand plain values to the templates.

pub mod customers;
pub mod feedback;
pub mod journeys;
pub mod overview;
pub mod segments;
pub mod settings;

/// Percent-encodes `text` for a query value or a path segment (everything but unreserved
/// characters, RFC 3986 §2.3).
pub fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The path of a customer's page.
pub fn customer_path(id: &str) -> String {
    format!("/customers/{}", encode_query(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_into_one_path_segment() {
        assert_eq!(customer_path("00042"), "/customers/00042");
        assert_eq!(customer_path("a/b?c#d e"), "/customers/a%2Fb%3Fc%23d%20e");
        assert_eq!(encode_query("Zoë"), "Zo%C3%AB");
        assert_eq!(encode_query("/customers?stage=lost&q=x"), "%2Fcustomers%3Fstage%3Dlost%26q%3Dx");
    }
}
