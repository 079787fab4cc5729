//! `/unsubscribe/{token}`: the pages behind the `List-Unsubscribe` link of every marketing email.
//!
//! The signed token is the authority (no bearer token: the recipient has none). A `GET` only
//! shows a confirmation page with the button and the preference (marketing email), and changes
//! nothing, because mail scanners and link previews follow links. A `POST` (the page's button,
//! or a mail client's RFC 8058 one-click `List-Unsubscribe=One-Click`) revokes the customer's
//! consent for the token's channel at once, recorded in their consent history with its source.
//!
//! A bad token gets the same short 400 page whatever is wrong with it, and no page names the
//! customer: a forwarded link shows nothing about whom it belongs to.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kanta_domain::record::{Consent, ConsentStatus, Customer};
use utoipa::ToSchema;

use crate::AppState;

/// The consent source of a revocation by the page's button.
pub const SOURCE_PAGE: &str = "unsubscribe_page";
/// The consent source of a revocation by a mail client's one-click POST (RFC 8058).
pub const SOURCE_ONE_CLICK: &str = "list_unsubscribe_one_click";

/// The body of a one-click unsubscribe (RFC 8058), or of the page's button: documentation
/// only, as the handler reads the form itself and any body unsubscribes.
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "the OpenAPI schema of the form; the handler parses the body itself")]
pub struct UnsubscribeForm {
    /// `One-Click` from a mail client's one-click unsubscribe.
    #[schema(rename = "List-Unsubscribe")]
    pub list_unsubscribe: Option<String>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;\
                     line-height:1.5;color:#222}button{font-size:1rem;padding:.5rem 1rem}";

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>\n"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    // The token is in the URL: no caching, and no Referer carrying it to another site.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn invalid() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "<p>This unsubscribe link is incomplete or was changed. Please use the link from the email \
         exactly as it came, or reply to the email and ask to be removed.</p>",
    )
}

fn verify(state: &AppState, path: Result<Path<String>, PathRejection>) -> Option<kanta_mail::Unsubscribed> {
    let Path(token) = path.ok()?;
    state.unsubscribe_key.as_ref()?.verify(&token).ok()
}

/// The confirmation and preference page of an unsubscribe link; changes nothing.
#[utoipa::path(get, path = "/unsubscribe/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "The signed token of the link")),
    responses((status = 200, description = "The confirmation page", content_type = "text/html", body = String),
              (status = 400, description = "The token is not valid", content_type = "text/html", body = String)))]
pub async fn page(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Some(link) = verify(&state, path) else { return invalid() };
    let what = match link.channel {
        kanta_mail::Channel::Email => "marketing email",
        kanta_mail::Channel::Sms => "marketing text messages",
    };
    // The form posts to this same URL; the button is the only way from here to a change.
    html_page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Do you want to stop receiving {what} from us?</p>\
             <form method=\"post\"><fieldset><legend>Your preferences</legend>\
             <p><label><input type=\"checkbox\" checked disabled> Unsubscribe from {what}</label></p>\
             <p>Messages about your orders (receipts, deliveries) still arrive.</p></fieldset>\
             <p><button type=\"submit\">Unsubscribe</button></p></form>"
        ),
    )
}

/// Unsubscribe at once: the page's button, or a mail client's RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`). The revocation goes into the customer's consent history.
#[utoipa::path(post, path = "/unsubscribe/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "The signed token of the link")),
    request_body(content = UnsubscribeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Unsubscribed", content_type = "text/html", body = String),
              (status = 400, description = "The token is not valid", content_type = "text/html", body = String),
              (status = 413, description = "The body is too large", body = crate::error::ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    let Some(link) = verify(&state, path) else { return invalid() };
    // Whatever else the body says, a valid link's POST unsubscribes: RFC 8058 asks for the
    // one-click body, and the page's button sends none; the body only tells the two apart.
    let one_click = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .is_ok_and(|fields| fields.iter().any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click"));
    let source = if one_click { SOURCE_ONE_CLICK } else { SOURCE_PAGE };
    match revoke(&state, &link, source).await {
        Ok(()) => html_page(
            StatusCode::OK,
            "You are unsubscribed",
            "<p>You will receive no more marketing messages from us on this channel. Messages about \
             your orders still arrive.</p>",
        ),
        Err(e) => crate::ApiError::Store(e).into_response(),
    }
}

/// Records the revocation, unless the customer no longer exists (erased): then there is
/// nothing to mail and nothing to record, and the page says the same as ever.
async fn revoke(
    state: &AppState,
    link: &kanta_mail::Unsubscribed,
    source: &str,
) -> Result<(), kanta_store::StoreError> {
    if state.store.customer_key(&link.customer).await?.is_none() {
        return Ok(());
    }
    let Ok(id) = kanta_domain::CustomerId::parse(link.customer.clone()) else { return Ok(()) };
    let customer = Customer {
        id,
        email: None,
        phone: None,
        name: None,
        timezone: None,
        locale: None,
        birthday: None,
        attributes: None,
        consent: vec![Consent {
            channel: link.channel,
            status: ConsentStatus::Revoked,
            source: Some(source.to_string()),
            time: None,
        }],
    };
    state.store.write_customers(&[customer], state.now()).await?;
    Ok(())
}
