//! Login by token, browser sessions, and the CSRF check of every form.
//!
//! `/login` exchanges an API token (scope `read` or `admin`) for a session: a random 256-bit id
//! in a cookie that is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it) and `Secure` over HTTPS, lasting `[dashboard] session`. The store keeps only the
//! id's SHA-256, like a token's, and finds a session only while its token is unrevoked, so
//! revoking the token ends it. Each session has its own CSRF token, which every form carries;
//! the login form, before there is a session, is protected the same way by a one-time value in
//! a cookie of its own (a double submit).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kanta_store::{Scope, TokenHash};
use serde::Deserialize;

use crate::security::{constant_time_eq, over_https, same_site};
use crate::{WebError, WebState};

/// The session cookie.
pub const SESSION_COOKIE: &str = "kanta_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "kanta_login";

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored hash of the session id (what logout deletes).
    hash: TokenHash,
    /// The token the session was made from.
    pub token_id: i64,
    /// Its scope.
    pub scope: Scope,
    /// Its name.
    pub token_name: Option<String>,
    /// The token the session's forms carry.
    pub csrf: String,
}

impl Session {
    /// Whether the session may export, erase and manage tokens.
    pub fn is_admin(&self) -> bool {
        self.scope.allows(Scope::Admin)
    }

    /// [`WebError::Forbidden`] unless the session is an admin's.
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.is_admin() { Ok(()) } else { Err(WebError::Forbidden("admin")) }
    }

    /// Checks that a state-changing request comes from one of this session's pages: the
    /// browser does not say it comes from another site, and the form's token is the session's.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), WebError> {
        if same_site(headers) && constant_time_eq(csrf, &self.csrf) { Ok(()) } else { Err(WebError::Csrf) }
    }
}

/// A form with no field but its CSRF token (a button).
#[derive(Debug, Deserialize)]
pub struct Button {}

/// Who may send a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any session (`read` or `admin`).
    Read,
    /// An `admin` session.
    Admin,
}

/// A form posted by one of the session's pages: the session behind the request (or a redirect
/// to the login, back to `here`), the form's CSRF token checked, the scope checked, then the
/// form read as `T` (its other fields; the token is not part of it).
pub async fn read_form<T: serde::de::DeserializeOwned>(
    state: &WebState,
    headers: &HeaderMap,
    here: &str,
    body: &Bytes,
    needs: Needs,
) -> Result<(Session, T), WebError> {
    let session = current(state, headers, here).await?;
    let token: CsrfForm = serde_urlencoded::from_bytes(body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    session.check_form(headers, &token.csrf)?;
    if needs == Needs::Admin {
        session.require_admin()?;
    }
    let form = serde_urlencoded::from_bytes(body).map_err(|e| WebError::BadRequest(format!("the form: {e}")))?;
    Ok((session, form))
}

/// The session of the request, or [`WebError::Login`] (back to `here` afterwards).
pub async fn current(state: &WebState, headers: &HeaderMap, here: &str) -> Result<Session, WebError> {
    let login = || WebError::Login { next: here.to_owned() };
    let id = cookie(headers, SESSION_COOKIE).ok_or_else(login)?;
    let hash = TokenHash::of(id);
    let row = state.store.find_session(&hash, state.now()).await?.ok_or_else(login)?;
    if !row.scope.allows(Scope::Read) {
        return Err(login());
    }
    Ok(Session { hash, token_id: row.token_id, scope: row.scope, token_name: row.token_name, csrf: row.csrf })
}

/// The value of cookie `name` in the request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// 256 random bits in hex.
fn random_id() -> Result<String, WebError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::BadRequest(format!("no randomness: {e}")))?;
    Ok(kanta_domain::hex(&bytes))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when `secure`.
fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn secure(state: &WebState, headers: &HeaderMap) -> bool {
    state.config.secure_cookies.unwrap_or_else(|| {
        over_https(headers) || state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    })
}

/// Where to go after login: a path on this site, nothing else (an open redirect would let a
/// link to our login page send people elsewhere).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".into(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /login`: the form, with a fresh double-submit value.
pub async fn login_form(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query: NextQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    login_page(&state, &headers, &safe_next(query.next.as_deref()), None, StatusCode::OK)
}

fn login_page(
    state: &WebState,
    headers: &HeaderMap,
    next: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let nonce = random_id()?;
    let page = minijinja::context! { csrf => nonce.clone(), next => next, problem => problem };
    let html = state.templates.page("login.html", "login", None, page)?;
    let mut response = (status, html).into_response();
    let cookie = set_cookie(LOGIN_COOKIE, &nonce, "/login", 3600, secure(state, headers));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /login`: a valid `read` or `admin` token starts a session.
pub async fn login(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let form: LoginForm =
        serde_urlencoded::from_bytes(&body).map_err(|e| WebError::BadRequest(format!("the login form: {e}")))?;
    let next = safe_next(form.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_site(&headers) || expected.is_empty() || !constant_time_eq(expected, &form.csrf) {
        return login_page(
            &state,
            &headers,
            &next,
            Some("The login form had expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let hash = TokenHash::of(form.token.trim());
    let token = match state.store.find_token(&hash).await? {
        Some(row) if row.hash.ct_eq(&hash) => row,
        _ => {
            return login_page(
                &state,
                &headers,
                &next,
                Some("That token is unknown or revoked."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    if !token.scope.allows(Scope::Read) {
        return login_page(
            &state,
            &headers,
            &next,
            Some("An ingest token can only write data: log in with a read or admin token."),
            StatusCode::FORBIDDEN,
        );
    }
    let id = random_id()?;
    let csrf = random_id()?;
    let now = state.now();
    let ttl = state.config.session;
    let expires = now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
    state.store.create_session(&TokenHash::of(&id), token.id, &csrf, now, expires).await?;
    let secure = secure(&state, &headers);
    let mut response = Redirect::to(&next).into_response();
    for cookie in
        [set_cookie(SESSION_COOKIE, &id, "/", ttl.as_secs(), secure), set_cookie(LOGIN_COOKIE, "", "/login", 0, secure)]
    {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// `POST /logout`: ends the session.
pub async fn logout(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let (session, Button {}) = read_form(&state, &headers, "/", &body, Needs::Read).await?;
    state.store.delete_session(&session.hash).await?;
    let mut response = Redirect::to("/login").into_response();
    let cookie = set_cookie(SESSION_COOKIE, "", "/", 0, secure(&state, &headers));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_login() {
        assert_eq!(safe_next(Some("/customers?stage=lost")), "/customers?stage=lost");
        for bad in ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", "/a\nb"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; kanta_session_x=2; kanta_session=abc ; z="));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "z"), None, "an empty value is no value");
        assert_eq!(cookie(&h, "kanta"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_when_asked() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "v", "/", 60, true),
            "kanta_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!set_cookie(SESSION_COOKIE, "v", "/", 60, false).contains("Secure"));
    }
}
