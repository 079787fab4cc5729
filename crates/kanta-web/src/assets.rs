//! The dashboard's static files, compiled into the binary: its style sheet, its one script
//! (progressive enhancement only) and its icon. Nothing is fetched from another origin.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::WebError;

const FILES: &[(&str, &str, &str)] = &[
    ("kanta.css", "text/css; charset=utf-8", include_str!("../assets/kanta.css")),
    ("kanta.js", "text/javascript; charset=utf-8", include_str!("../assets/kanta.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../assets/favicon.svg")),
];

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Result<Response, WebError> {
    let (_, kind, body) =
        FILES.iter().find(|(n, _, _)| *n == name).ok_or_else(|| WebError::NotFound(format!("no asset `{name}`")))?;
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Not fingerprinted: an hour, so a new version is picked up the same day.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(response)
}
