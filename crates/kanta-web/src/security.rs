//! The headers every dashboard response carries, and the check that a state-changing request
//! comes from the dashboard's own pages.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Only the dashboard's own script and styles run: no inline script or style, no other origin,
/// no framing, forms post only back here. Charts are inline SVG, which needs none of these.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers; pages (not the static assets) are also never cached, since they
/// show personal data.
pub async fn headers(request: Request, next: Next) -> Response {
    let asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether a state-changing request comes from this site. Browsers say where a request comes
/// from (`Sec-Fetch-Site`, `Origin`); a request that says it comes from elsewhere is refused
/// even before its CSRF token is checked. Clients that send neither (scripts, old browsers)
/// are left to the CSRF token.
pub fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
            !host.is_empty()
                && (origin.strip_prefix("http://") == Some(host) || origin.strip_prefix("https://") == Some(host))
        }
    }
}

/// Whether the request reached us over HTTPS (through a proxy that says so).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")))
}

/// Equality that takes the same time wherever the texts differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn requests_from_elsewhere_are_told_apart() {
        assert!(same_site(&headers(&[])));
        assert!(same_site(&headers(&[("host", "kanta:8080"), ("origin", "http://kanta:8080")])));
        assert!(same_site(&headers(&[("host", "kanta:8080"), ("origin", "https://kanta:8080")])));
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_site(&headers(&[("host", "kanta:8080"), ("origin", "http://evil.example")])));
        assert!(!same_site(&headers(&[("host", "kanta:8080"), ("origin", "http://kanta:8080.evil.example")])));
        assert!(!same_site(&headers(&[("origin", "null")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "same-site")])));
    }

    #[test]
    fn https_is_read_from_the_proxy_header() {
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS, http")])));
        assert!(!over_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_https(&headers(&[])));
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(constant_time_eq("", ""));
    }
}
