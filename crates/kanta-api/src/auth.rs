//! Bearer-token authorisation.

use axum::http::HeaderMap;
use kanta_store::{Scope, TokenHash, TokenRow};

use crate::AppState;
use crate::error::ApiError;

/// The token presented with the request, if it exists and allows `needed`.
pub async fn authorize(state: &AppState, headers: &HeaderMap, needed: Scope) -> Result<TokenRow, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing `Authorization: Bearer TOKEN` header".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into()))?;
    let hash = TokenHash::of(token);
    let row = state.store.find_token(&hash).await?;
    // The lookup is by hash; comparing again in constant time keeps the decision itself free
    // of timing differences.
    match row {
        Some(row) if row.hash.ct_eq(&hash) => {
            if row.scope.allows(needed) {
                Ok(row)
            } else {
                Err(ApiError::Forbidden(needed))
            }
        }
        _ => Err(ApiError::Unauthorized("unknown or revoked token".into())),
    }
}
