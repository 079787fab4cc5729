//! Settings (`/settings`, admin only): API tokens (create — the token is shown once — and
//! revoke), the outbound webhooks and their health, and the settings in effect with every
//! secret hidden (what `kanta config show` prints).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kanta_store::{Scope, Secret};
use serde::{Deserialize, Serialize};

use crate::pages::overview::readable_time;
use crate::session::{Button, Needs, Session, current, read_form};
use crate::{WebError, WebState};

/// Longest token name.
const MAX_NAME: usize = 100;

#[derive(Serialize)]
struct TokenRow {
    id: i64,
    scope: &'static str,
    name: String,
    created: String,
    revoked: Option<String>,
    mine: bool,
}

#[derive(Serialize)]
struct Endpoint {
    name: String,
    url: String,
    health: &'static str,
    detail: String,
    pending: String,
    delivered: String,
    failed: String,
}

/// A token just made, shown once.
#[derive(Serialize)]
struct Created {
    token: String,
    scope: &'static str,
    name: String,
}

async fn render(
    state: &WebState,
    session: &Session,
    created: Option<Created>,
    problem: Option<String>,
) -> Result<Html<String>, WebError> {
    let f = &state.config.format;
    let tokens: Vec<TokenRow> = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            id: t.id,
            scope: t.scope.as_str(),
            name: t.name.unwrap_or_default(),
            created: readable_time(&t.created_at),
            revoked: t.revoked_at.as_deref().map(readable_time),
            mine: t.id == session.token_id,
        })
        .collect();
    let endpoints: Vec<Endpoint> = state
        .store
        .webhook_endpoints()
        .await?
        .into_iter()
        .map(|e| {
            let (health, detail) = match (&e.paused_at, e.failures) {
                (Some(at), _) => (
                    "paused",
                    format!(
                        "paused {}: {}",
                        readable_time(&kanta_store::rfc3339(*at)),
                        e.paused_reason.clone().unwrap_or_default()
                    ),
                ),
                (None, 0) => ("healthy", String::new()),
                (None, n) => ("failing", format!("{n} failures in a row")),
            };
            Endpoint {
                url: kanta_webhooks::mask_url(&e.url),
                health,
                detail,
                pending: f.integer(u64::try_from(e.pending).unwrap_or(0)),
                delivered: f.integer(u64::try_from(e.delivered).unwrap_or(0)),
                failed: f.integer(u64::try_from(e.failed).unwrap_or(0)),
                name: e.name,
            }
        })
        .collect();
    let page = minijinja::context! {
        tokens => tokens,
        endpoints => endpoints,
        settings => state.config.settings_text.clone(),
        created => created,
        problem => problem,
        session_hours => f.decimal(state.config.session.as_secs_f64() / 3600.0, 0),
    };
    state.templates.page("settings.html", "settings", Some(session), page)
}

/// `GET /settings`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/settings").await?;
    session.require_admin()?;
    render(&state, &session, None, None).await
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/tokens`: a new token, shown on the page that answers (once; only its hash
/// is stored).
pub async fn create_token(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let (session, form): (_, TokenForm) = read_form(&state, &headers, "/settings", &body, Needs::Admin).await?;
    let Some(scope) = Scope::parse(&form.scope) else {
        let problem = format!("`{}` is not a scope: choose ingest, read or admin.", form.scope);
        return Ok((StatusCode::BAD_REQUEST, render(&state, &session, None, Some(problem)).await?).into_response());
    };
    let name = form.name.trim();
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        let problem = format!("The name must be at most {MAX_NAME} characters without control characters.");
        return Ok((StatusCode::BAD_REQUEST, render(&state, &session, None, Some(problem)).await?).into_response());
    }
    let secret = Secret::generate().map_err(|e| WebError::BadRequest(format!("no randomness: {e}")))?;
    let name = (!name.is_empty()).then_some(name);
    state.store.insert_token(&secret.hash(), scope, name, state.now()).await?;
    let created =
        Created { token: secret.expose().to_owned(), scope: scope.as_str(), name: name.unwrap_or_default().to_owned() };
    Ok(render(&state, &session, Some(created), None).await?.into_response())
}

/// `POST /settings/tokens/{id}/revoke`: the token stops working, and so do its sessions.
pub async fn revoke_token(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let (session, Button {}) = read_form(&state, &headers, "/settings", &body, Needs::Admin).await?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound(format!("no token `{id}`")))?;
    if !state.store.revoke_token(id, state.now()).await? {
        return Err(WebError::NotFound(format!("no unrevoked token {id}")));
    }
    // Revoking this session's own token ends it: back to the login.
    Ok(Redirect::to(if id == session.token_id { "/login" } else { "/settings" }).into_response())
}
