//! The one HTTP error type: every failure becomes a status and a JSON body
//! `{"error": {"status", "code", "message", "records"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kanta_store::StoreError;
use kanta_store::record::RecordError;
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token; a missing, stale or wrong inbound signature.
    #[error("{0}")]
    Unauthorized(std::borrow::Cow<'static, str>),
    /// The token's scope does not allow the call.
    #[error("this call needs a token with scope `{0}`")]
    Forbidden(kanta_store::Scope),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is malformed (query, header, body that is not a batch).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the limit, or the batch has too many records.
    #[error("{0}")]
    TooLarge(String),
    /// Some records are invalid; nothing was written.
    #[error("{} invalid record field(s); nothing was written", .0.len())]
    InvalidRecords(Vec<RecordError>),
    /// A journey document has problems (422, each with its JSON pointer); nothing was applied.
    #[error("the journey has {} problem(s); nothing was applied", .0.len())]
    InvalidJourney(Vec<JourneyProblem>),
    /// A segment expression does not parse or type-check.
    #[error("invalid segment expression at {0}")]
    InvalidExpression(kanta_segment::SegmentError),
    /// The resource exists already (e.g. a segment name).
    #[error("{0}")]
    Conflict(String),
    /// A signed inbound request that was accepted before (within its timestamp's window).
    #[error("this signed request was already accepted; a sender signs every request with a fresh timestamp")]
    Replayed,
    /// An idempotency key was reused for a different request.
    #[error("the Idempotency-Key was already used for a different request")]
    KeyReused,
    /// The body did not arrive within the server's body timeout (408).
    #[error("the request body did not arrive within {} s", .0.as_secs_f64())]
    RequestTimeout(std::time::Duration),
    /// The path exists but not with this method (405; the `Allow` header lists the methods).
    #[error("this endpoint does not accept this method; see /openapi.json")]
    MethodNotAllowed,
    /// The store failed; the details go to the log, not to the client.
    #[error("internal error")]
    Store(#[from] StoreError),
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// HTTP status.
    pub status: u16,
    /// A stable machine-readable code (`unauthorized`, `invalid_records`, …).
    pub code: &'static str,
    /// A readable explanation.
    pub message: String,
    /// Every invalid record field, for `invalid_records`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordError>,
    /// For `invalid_expression`: the 1-based column of the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// For `invalid_journey`: every problem of the document.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<JourneyProblem>,
}

/// One problem of a journey document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JourneyProblem {
    /// Where, as an RFC 6901 JSON pointer (`/steps/3/wait`; empty for the whole document).
    pub pointer: String,
    /// The offending value and what was expected.
    pub message: String,
}

impl ApiError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::InvalidRecords(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_records"),
            ApiError::InvalidJourney(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_journey"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Replayed => (StatusCode::CONFLICT, "replayed"),
            ApiError::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::InvalidExpression(_) => (StatusCode::BAD_REQUEST, "invalid_expression"),
            // The two store answers about the caller's request rather than a failure.
            ApiError::Store(StoreError::TooCostly(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "too_costly"),
            ApiError::Store(StoreError::TotalTooLarge(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "total_too_large"),
            ApiError::Store(StoreError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The status and JSON body.
    pub fn body(self) -> (StatusCode, ErrorBody) {
        let (status, code) = self.status_code();
        let message = match &self {
            ApiError::Store(e @ (StoreError::TooCostly(_) | StoreError::Busy | StoreError::TotalTooLarge(_))) => {
                e.to_string()
            }
            ApiError::Store(e) => {
                tracing::error!("kanta serve: store error: {e}");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let column = match &self {
            ApiError::InvalidExpression(e) => Some(e.column),
            _ => None,
        };
        let (records, problems) = match self {
            ApiError::InvalidRecords(records) => (records, Vec::new()),
            ApiError::InvalidJourney(problems) => (Vec::new(), problems),
            _ => (Vec::new(), Vec::new()),
        };
        let error = ErrorDetail { status: status.as_u16(), code, message, records, column, problems };
        (status, ErrorBody { error })
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    /// A body that could not be read: 413 when it is over [`crate::BODY_LIMIT`] (on every route,
    /// so a client can tell "too big" from "malformed"), 400 otherwise.
    fn from(e: axum::extract::rejection::BytesRejection) -> ApiError {
        match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(format!("the body is larger than the limit of {} bytes", crate::BODY_LIMIT))
            }
            _ => ApiError::BadRequest(e.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.body();
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costly_and_busy_segment_queries_are_answers_not_internal_errors() {
        let (status, body) = ApiError::Store(StoreError::TooCostly(std::time::Duration::from_secs(10))).body();
        assert_eq!((status, body.error.code), (StatusCode::UNPROCESSABLE_ENTITY, "too_costly"));
        assert_eq!(
            body.error.message,
            "the segment query ran longer than its budget of 10000 ms and was stopped; narrow the expression"
        );
        let response = ApiError::Store(StoreError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
        let (status, body) = ApiError::Store(StoreError::Corrupt("x".into())).body();
        assert_eq!((status, body.error.message.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
    }
}
