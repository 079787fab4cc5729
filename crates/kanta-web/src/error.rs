//! The dashboard's errors, each answered with a page a person can read (the API answers JSON).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// What can go wrong serving a page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid session: the browser is sent to the login page, which returns to `next`.
    #[error("log in to continue")]
    Login {
        /// The path to come back to.
        next: String,
    },
    /// The session's scope does not allow this.
    #[error("this needs a token of scope `{0}`")]
    Forbidden(&'static str),
    /// The request did not come from the dashboard's own form (wrong or missing CSRF token,
    /// or a cross-site origin).
    #[error("the form has expired or did not come from this dashboard: reload the page and try again")]
    Csrf,
    /// Nothing here.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request (form or query).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] kanta_store::StoreError),
    /// A template failed (a defect: templates are compiled in).
    #[error("a page could not be drawn: {0}")]
    Render(#[from] minijinja::Error),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::Login { next } => {
                let location = format!("/login?next={}", crate::pages::encode_query(next));
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                return response;
            }
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Store(_) | WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("kanta serve: dashboard: {self}");
        }
        // A plain page: the error may come from the template engine itself.
        let message = match status {
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on the server; the log says what.".to_string(),
            _ => self.to_string(),
        };
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{code} — kanta</title><link rel=\"stylesheet\" href=\"/assets/kanta.css\">\
             <link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\"></head>\
             <body><main class=\"narrow\"><h1>{code}</h1><p>{message}</p><p><a href=\"/\">Back to the overview</a></p>\
             </main></body></html>",
            code = status.as_u16(),
            // The templates' own escaping, so every page escapes alike.
            message = minijinja::HtmlEscape(&message),
        );
        (status, Html(body)).into_response()
    }
}
