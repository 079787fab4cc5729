//! Inbound webhooks: `POST /v1/hooks/{name}` accepts customer and consent updates in a CRM's
//! own JSON shape and maps them onto kanta's customer records with a field mapping from the
//! configuration (`[[inbound]]` in `kanta.toml`) — or, for a hook of `kind = "bounces"`, an
//! email provider's bounce and complaint reports, mapped onto `address`, `kind` and `source` and
//! recorded like `POST /v1/bounces` (a hard bounce or a complaint suppresses the address at once,
//! soft bounces after `soft_bounce_limit`).
//!
//! The body is one object, an array of objects, or an object holding the array at `records`
//! (a dot path). Each item becomes one customer record: every mapping `target = "source.path"`
//! copies the value at the path (numbers and booleans as text for text fields; arrays indexed by
//! number, `emails.0.address`). Targets are `id` (required), `email`, `phone`, `name`,
//! `timezone`, `locale`, `birthday`, `attributes.NAME` (any JSON value) and `consent.email` /
//! `consent.sms` (a value among `granted` / `revoked` words, recorded with source
//! `webhook:NAME`). A missing or null value leaves the field as it is. The records then go
//! through the same validation and atomic batch write as `POST /v1/customers`; a 422 names the
//! item, the kanta field and the source path.
//!
//! Authentication per hook: `token` (a kanta bearer token with scope ingest), `kanta-signature`
//! (`Kanta-Signature: t=…,v1=…` over `t.body`) or `hmac-sha256` (a configurable header carrying
//! the HMAC-SHA256 under the secret of `TIMESTAMP.BODY`, where `TIMESTAMP` is the text of a
//! second configurable header, `X-Kanta-Timestamp` by default, holding Unix seconds; the MAC in
//! hex — optionally prefixed `sha256=` — or base64).
//!
//! Replays: both signature modes need a timestamp within [`TOLERANCE_SECONDS`] of the server's
//! clock (else 401 "too old" / "from the future"), and an accepted signature is remembered in
//! the store (`inbound_seen`, in the transaction that writes the customers) until its timestamp
//! leaves that window, so the same signed request a second time is refused with 409 `replayed`
//! — across restarts and across servers sharing a database. Token hooks have no signature to
//! remember: the bearer token is the sender's own credential, as on `POST /v1/customers`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use hmac::Mac;
use kanta_store::journey::Bounce;
use kanta_store::record::{RecordError, parse_value};
use kanta_store::{Customer, Scope, SeenSignature};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::ingest::IngestResponse;
use crate::{ApiError, AppState, auth};

/// How far (seconds) a signed request's timestamp may be from the server's clock, either way.
pub const TOLERANCE_SECONDS: i64 = 300;
/// The default timestamp header of `hmac-sha256` hooks.
pub const DEFAULT_TIMESTAMP_HEADER: &str = "x-kanta-timestamp";

/// The customer fields a mapping can fill.
pub const TARGETS: [&str; 7] = ["id", "email", "phone", "name", "timezone", "locale", "birthday"];
/// Values that mean consent is given / withdrawn (compared lower-cased).
const GRANTED: [&str; 8] = ["granted", "true", "yes", "1", "subscribed", "opt_in", "opted_in", "on"];
const REVOKED: [&str; 9] = ["revoked", "false", "no", "0", "unsubscribed", "opt_out", "opted_out", "off", "withdrawn"];

/// How an inbound hook authenticates its sender.
#[derive(Clone, PartialEq, Eq)]
pub enum InboundAuth {
    /// A kanta bearer token with scope ingest.
    Token,
    /// `Kanta-Signature` over `timestamp.body`.
    KantaSignature(Vec<u8>),
    /// HMAC-SHA256 of `TIMESTAMP.BODY` in the named header, hex (optionally `sha256=`) or
    /// base64, with `TIMESTAMP` (Unix seconds) the text of the timestamp header.
    HmacSha256 {
        /// The shared secret.
        secret: Vec<u8>,
        /// The signature header (lower-case).
        header: String,
        /// The timestamp header (lower-case).
        timestamp_header: String,
    },
}

impl std::fmt::Debug for InboundAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InboundAuth::Token => f.write_str("Token"),
            InboundAuth::KantaSignature(_) => f.write_str("KantaSignature(***)"),
            InboundAuth::HmacSha256 { header, timestamp_header, .. } => {
                write!(f, "HmacSha256({header}, {timestamp_header}, ***)")
            }
        }
    }
}

/// What a hook's items are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    /// Customer and consent updates (`id`, `email`, …, `consent.email`).
    Customers,
    /// Bounce and complaint reports (`address`, `kind`, `source`).
    Bounces,
}

/// The fields a bounce hook maps: `address` and `kind` required, `source` optional.
pub const BOUNCE_TARGETS: [&str; 3] = ["address", "kind", "source"];
/// Words for each kind of bounce report (compared lower-cased), as providers name them.
const HARD: [&str; 7] = ["hard", "bounce", "bounced", "permanent", "hard_bounce", "hardbounce", "dropped"];
const SOFT: [&str; 6] = ["soft", "transient", "temporary", "soft_bounce", "softbounce", "deferred"];
const COMPLAINT: [&str; 6] = ["complaint", "complained", "spam", "spamreport", "abuse", "spam_report"];

/// One configured inbound hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundHook {
    /// The name in the URL.
    pub name: String,
    /// Sender authentication.
    pub auth: InboundAuth,
    /// Dot path of the array of items in the body; none: the body is the item or the array.
    pub records: Option<String>,
    /// kanta field → source dot path, in a stable order.
    pub fields: BTreeMap<String, String>,
    /// Customers or bounce reports.
    pub kind: InboundKind,
}

impl InboundHook {
    /// Check a configured hook: a URL-safe name, an `id` mapping, known targets, paths that are
    /// non-empty dot paths.
    pub fn new(
        name: &str,
        auth: InboundAuth,
        records: Option<String>,
        fields: BTreeMap<String, String>,
    ) -> Result<InboundHook, String> {
        let required = [("id", format!("inbound hook `{name}`: `fields` must map `id` (the customer id)"))];
        let unknown = |target: &str| {
            let known = TARGETS.contains(&target)
                || target.strip_prefix("attributes.").is_some_and(|a| !a.is_empty())
                || matches!(target, "consent.email" | "consent.sms");
            (!known).then(|| {
                format!(
                    "inbound hook `{name}`: unknown field `{target}`: use {}, attributes.NAME, consent.email or consent.sms",
                    TARGETS.join(", ")
                )
            })
        };
        checked(name, auth, records, fields, InboundKind::Customers, &required, unknown)
    }

    /// Check a configured bounce hook: as [`InboundHook::new`], with the targets `address` and
    /// `kind` (required) and `source`.
    pub fn bounces(
        name: &str,
        auth: InboundAuth,
        records: Option<String>,
        fields: BTreeMap<String, String>,
    ) -> Result<InboundHook, String> {
        let required = ["address", "kind"]
            .map(|field| (field, format!("inbound hook `{name}`: a bounces hook's `fields` must map `{field}`")));
        let unknown = |target: &str| {
            (!BOUNCE_TARGETS.contains(&target)).then(|| {
                format!(
                    "inbound hook `{name}`: unknown field `{target}` for a bounces hook: use {}",
                    BOUNCE_TARGETS.join(", ")
                )
            })
        };
        checked(name, auth, records, fields, InboundKind::Bounces, &required, unknown)
    }
}

/// The checks every hook gets, in order: a URL-safe name, the `required` fields mapped (else
/// their message), every target known (`unknown` says why not) and every path a non-empty dot
/// path, a signing secret of at least 16 characters.
fn checked(
    name: &str,
    auth: InboundAuth,
    records: Option<String>,
    fields: BTreeMap<String, String>,
    kind: InboundKind,
    required: &[(&str, String)],
    unknown: impl Fn(&str) -> Option<String>,
) -> Result<InboundHook, String> {
    if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(format!("inbound hook name `{}`: use 1–100 letters, digits, `-` or `_`", name.escape_debug()));
    }
    if let Some((_, message)) = required.iter().find(|(field, _)| !fields.contains_key(*field)) {
        return Err(message.clone());
    }
    for (target, path) in &fields {
        if let Some(problem) = unknown(target) {
            return Err(problem);
        }
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!("inbound hook `{name}`: field `{target}`: `{path}` is not a dot path"));
        }
    }
    if let InboundAuth::KantaSignature(s) | InboundAuth::HmacSha256 { secret: s, .. } = &auth
        && s.len() < 16
    {
        return Err(format!("inbound hook `{name}`: the secret needs at least 16 characters"));
    }
    Ok(InboundHook { name: name.to_string(), auth, records, fields, kind })
}

/// One bounce report: the address (lower-cased), its kind and who reported it.
#[derive(Debug, PartialEq)]
struct BounceReport {
    address: String,
    kind: Bounce,
    source: Option<String>,
}

/// Problems of one item: (kanta field, reason).
type Problems = Vec<(String, String)>;

/// One bounce report item, or its problems.
fn map_bounce(hook: &InboundHook, item: &Value) -> Result<BounceReport, Problems> {
    let field = |target: &str| hook.fields.get(target).and_then(|path| lookup(item, path)).and_then(text);
    let mut problems = Vec::new();
    let address = match field("address").map(|a| crate::journeys::bounce_address(&a)) {
        Some(Ok(address)) => Some(address),
        Some(Err(reason)) => {
            problems.push(("address".to_owned(), reason));
            None
        }
        None => {
            problems.push(("address".to_owned(), format!("`{}` is missing or null", hook.fields["address"])));
            None
        }
    };
    let word = field("kind").map(|k| k.trim().to_lowercase());
    let kind = match word.as_deref() {
        Some(w) if HARD.contains(&w) => Some(Bounce::Hard),
        Some(w) if SOFT.contains(&w) => Some(Bounce::Soft),
        Some(w) if COMPLAINT.contains(&w) => Some(Bounce::Complaint),
        other => {
            let path = &hook.fields["kind"];
            problems.push((
                "kind".to_owned(),
                match other {
                    Some(w) => format!("`{path}` = `{w}` is not a hard or soft bounce or a complaint"),
                    None => format!("`{path}` is missing or null"),
                },
            ));
            None
        }
    };
    match (address, kind) {
        (Some(address), Some(kind)) if problems.is_empty() => {
            Ok(BounceReport { address, kind, source: field("source").map(|s| s.chars().take(64).collect()) })
        }
        _ => Err(problems),
    }
}

/// The value at a dot path (`a.b.0.c`).
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One item as a customer record (JSON, to be validated by the record code), or the problems.
fn map_item(hook: &InboundHook, item: &Value) -> Result<Value, Vec<(String, String)>> {
    let mut record = Map::new();
    let mut attributes = Map::new();
    let mut consent = Vec::new();
    let mut problems = Vec::new();
    for (target, path) in &hook.fields {
        let Some(value) = lookup(item, path).filter(|v| !v.is_null()) else { continue };
        if let Some(name) = target.strip_prefix("attributes.") {
            attributes.insert(name.to_string(), value.clone());
        } else if let Some(channel) = target.strip_prefix("consent.") {
            let word = text(value).unwrap_or_default().trim().to_lowercase();
            let status = if GRANTED.contains(&word.as_str()) {
                "granted"
            } else if REVOKED.contains(&word.as_str()) {
                "revoked"
            } else {
                problems.push((target.clone(), format!("`{path}` = {value} is neither a granted nor a revoked value")));
                continue;
            };
            consent.push(json!({"channel": channel, "status": status, "source": format!("webhook:{}", hook.name)}));
        } else {
            match text(value) {
                Some(t) => {
                    record.insert(target.clone(), Value::String(t));
                }
                None => problems.push((target.clone(), format!("`{path}` is {value}, not a text, number or boolean"))),
            }
        }
    }
    if !record.contains_key("id") {
        problems.push(("id".into(), format!("`{}` is missing or null", hook.fields["id"])));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !attributes.is_empty() {
        record.insert("attributes".into(), Value::Object(attributes));
    }
    if !consent.is_empty() {
        record.insert("consent".into(), Value::Array(consent));
    }
    Ok(Value::Object(record))
}

/// The items of a body.
fn items<'v>(hook: &InboundHook, body: &'v Value) -> Result<Vec<&'v Value>, ApiError> {
    let container = match &hook.records {
        Some(path) => lookup(body, path)
            .ok_or_else(|| ApiError::BadRequest(format!("the body has no `{path}` (this hook's records path)")))?,
        None => body,
    };
    match container {
        Value::Array(a) => Ok(a.iter().collect()),
        Value::Object(_) => Ok(vec![container]),
        other => Err(ApiError::BadRequest(format!("expected an object or an array of objects, found {other}"))),
    }
}

/// Check the sender: for the signature modes, the signature to remember (none for tokens).
async fn authenticate(
    state: &AppState,
    hook: &InboundHook,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<SeenSignature>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let now = state.clock.now().micros().div_euclid(1_000_000);
    let refused = |e: kanta_webhooks::sign::SignatureError| ApiError::Unauthorized(e.to_string().into());
    let (timestamp, mac) = match &hook.auth {
        InboundAuth::Token => return auth::authorize(state, headers, Scope::Ingest).await.map(|_| None),
        InboundAuth::KantaSignature(secret) => {
            let value =
                header("kanta-signature").ok_or(ApiError::Unauthorized("missing Kanta-Signature header".into()))?;
            let verified =
                kanta_webhooks::sign::verified(secret, value, body, now, TOLERANCE_SECONDS).map_err(refused)?;
            (verified.timestamp, verified.mac)
        }
        InboundAuth::HmacSha256 { secret, header: name, timestamp_header } => {
            let value = header(name).ok_or_else(|| ApiError::Unauthorized(format!("missing {name} header").into()))?;
            let text = header(timestamp_header).ok_or_else(|| {
                ApiError::Unauthorized(
                    format!(
                        "missing {timestamp_header} header (the request's Unix time in seconds, signed with the body)"
                    )
                    .into(),
                )
            })?;
            let timestamp = text
                .parse::<i64>()
                .ok()
                .filter(|_| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    ApiError::Unauthorized(format!("the {timestamp_header} header is not Unix seconds").into())
                })?;
            kanta_webhooks::sign::check_timestamp(timestamp, now, TOLERANCE_SECONDS).map_err(refused)?;
            let given = value.strip_prefix("sha256=").unwrap_or(value);
            // 64 hex digits are the 32 bytes of a SHA-256 MAC; anything else is read as base64.
            let hex = (given.len() == 64).then(|| kanta_webhooks::sign::decode_hex(given)).flatten();
            let bytes = hex.or_else(|| base64_decode(given)).unwrap_or_default();
            let expected = kanta_webhooks::sign::timestamped_mac(secret, text, body);
            expected
                .clone()
                .verify_slice(&bytes)
                .map_err(|_| refused(kanta_webhooks::sign::SignatureError::Mismatch))?;
            (timestamp, expected.finalize().into_bytes().to_vec())
        }
    };
    let expires = timestamp.saturating_add(TOLERANCE_SECONDS + 1).saturating_mul(1_000_000);
    Ok(Some(SeenSignature {
        hook: hook.name.clone(),
        digest: kanta_store::token::hex(&Sha256::digest(&mac)),
        expires_at: expires,
    }))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Receive customer and consent updates from a configured CRM hook.
#[utoipa::path(post, path = "/v1/hooks/{name}", tag = "ingest",
    params(("name" = String, Path, description = "The hook's configured name")),
    request_body(content = Object, description = "The CRM's JSON: one object, an array, or an object with the array at the hook's `records` path"),
    responses((status = 200, body = IngestResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let Path(name) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let hook = state
        .inbound
        .iter()
        .find(|h| h.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no inbound hook `{name}` is configured")))?;
    let body = body.map_err(ApiError::from)?;
    let seen = authenticate(&state, hook, &headers, &body).await?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let items = items(hook, &value)?;
    if items.len() > kanta_store::record::MAX_BATCH {
        return Err(ApiError::TooLarge(format!("{} records; at most {}", items.len(), kanta_store::record::MAX_BATCH)));
    }
    if hook.kind == InboundKind::Bounces {
        return receive_bounces(&state, hook, seen, &items).await;
    }
    let mut records: Vec<Customer> = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let times = state.accepted_times();
    for (index, item) in items.into_iter().enumerate() {
        let checked = map_item(hook, item).and_then(|value| parse_value::<Customer>(value, times));
        match checked {
            Ok(c) => records.push(c),
            Err(problems) => rejected.extend(problems.into_iter().map(|(field, reason)| {
                let source = hook.fields.get(field.split(['.', '[']).next().unwrap_or(&field)).map(String::as_str);
                let reason = match source {
                    Some(path) if !reason.contains(path) => format!("{reason} (from `{path}`)"),
                    _ => reason,
                };
                RecordError { index, field, reason }
            })),
        }
    }
    let Some(seen) = seen else {
        return Ok(Json(crate::ingest::write_checked(&state, records, rejected, false).await?));
    };
    // Nothing is remembered for a rejected batch (nothing was written, and the same request
    // would be rejected again); an accepted one is remembered with its write.
    let rejected = crate::ingest::refuse_rejected::<Customer>(&state, rejected, false)?;
    // Written at the clock's time, as every other batch is: the replay record's expiry is
    // measured on the same clock as the purge that deletes it.
    let now = state.now();
    let counts = state.store.write_customers_once(&seen, &records, now).await?.ok_or(ApiError::Replayed)?;
    Ok(Json(crate::ingest::counted::<Customer>(&state, records.len(), counts, rejected)))
}

/// A bounces hook's items, all checked before any is recorded (a 422 names each bad item's
/// field); a signed request is remembered first, so a replay records nothing twice.
async fn receive_bounces(
    state: &AppState,
    hook: &InboundHook,
    seen: Option<SeenSignature>,
    items: &[&Value],
) -> Result<Json<IngestResponse>, ApiError> {
    let mut reports = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match map_bounce(hook, item) {
            Ok(report) => reports.push(report),
            Err(problems) => {
                rejected.extend(problems.into_iter().map(|(field, reason)| RecordError { index, field, reason }))
            }
        }
    }
    if !rejected.is_empty() {
        return Err(ApiError::InvalidRecords(rejected));
    }
    let now = state.now();
    if let Some(seen) = seen {
        // Remembering the signature is the whole write here (no customer records).
        state.store.write_customers_once(&seen, &[], now).await?.ok_or(ApiError::Replayed)?;
    }
    for BounceReport { address, kind, source } in &reports {
        // The address is personal data: the log names the kind and the reporter only.
        tracing::info!(
            "kanta serve: {kind:?} bounce reported through inbound hook `{}`{}",
            hook.name,
            source.as_deref().map(|s| format!(" by {s}")).unwrap_or_default()
        );
        state.store.record_bounce(address, *kind, state.soft_bounce_limit, now).await?;
    }
    state.metrics.records("bounce", "created", reports.len() as u64);
    Ok(Json(IngestResponse {
        accepted: reports.len() as u64,
        created: 0,
        updated: 0,
        unchanged: 0,
        customers_created: 0,
        rejected: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hubspot() -> InboundHook {
        let fields = [
            ("id", "vid"),
            ("email", "properties.email.value"),
            ("name", "properties.firstname.value"),
            ("attributes.lifecycle", "properties.lifecyclestage.value"),
            ("consent.email", "properties.subscribed.value"),
        ];
        let fields = fields.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect();
        InboundHook::new("hubspot", InboundAuth::Token, Some("contacts".into()), fields).expect("valid")
    }

    #[test]
    fn items_are_mapped_by_dot_paths_with_numbers_as_text_and_consent_words() {
        let body = json!({"contacts": [
            {"vid": 4201, "properties": {"email": {"value": "a@example.com"}, "firstname": {"value": "Ann"},
             "lifecyclestage": {"value": "customer"}, "subscribed": {"value": "false"}}},
            {"vid": "c-2", "properties": {"email": {"value": null}}}
        ]});
        let hook = hubspot();
        let items = items(&hook, &body).expect("items");
        assert_eq!(
            map_item(&hook, items[0]).expect("mapped"),
            json!({"attributes": {"lifecycle": "customer"}, "email": "a@example.com", "id": "4201", "name": "Ann",
                   "consent": [{"channel": "email", "status": "revoked", "source": "webhook:hubspot"}]})
        );
        assert_eq!(map_item(&hook, items[1]).expect("mapped"), json!({"id": "c-2"}), "null leaves the field as it is");
    }

    #[test]
    fn bad_items_name_the_field_and_the_source_path() {
        let hook = hubspot();
        let missing = map_item(&hook, &json!({"properties": {}})).expect_err("no id");
        assert_eq!(missing, [("id".to_string(), "`vid` is missing or null".to_string())]);
        let odd = map_item(
            &hook,
            &json!({"vid": 1, "properties": {"subscribed": {"value": "maybe"},
            "email": {"value": {"a": 1}}}}),
        )
        .expect_err("bad values");
        assert_eq!(odd.len(), 2, "{odd:?}");
        assert!(odd.iter().any(|(f, r)| f == "consent.email" && r.contains("\"maybe\"")), "{odd:?}");
        assert!(odd.iter().any(|(f, r)| f == "email" && r.contains("properties.email.value")), "{odd:?}");
    }

    #[test]
    fn lookups_walk_objects_and_arrays() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": 2}]}});
        assert_eq!(lookup(&v, "a.b.1.c"), Some(&json!(2)));
        assert_eq!(lookup(&v, "a.b.x"), None);
        assert_eq!(lookup(&v, "a.b.7.c"), None);
        assert_eq!(lookup(&v, "a.b.0.c.d"), None);
    }

    #[test]
    fn configurations_need_an_id_known_targets_and_long_secrets() {
        let fields = |pairs: &[(&str, &str)]| pairs.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect();
        assert!(InboundHook::new("crm", InboundAuth::Token, None, fields(&[("email", "e")])).is_err());
        assert!(InboundHook::new("crm", InboundAuth::Token, None, fields(&[("id", "i"), ("shoe_size", "s")])).is_err());
        assert!(InboundHook::new("crm", InboundAuth::Token, None, fields(&[("id", "a..b")])).is_err());
        assert!(InboundHook::new("c r m", InboundAuth::Token, None, fields(&[("id", "i")])).is_err());
        let hmac = |secret: &[u8]| InboundAuth::HmacSha256 {
            secret: secret.to_vec(),
            header: "x-sig".into(),
            timestamp_header: DEFAULT_TIMESTAMP_HEADER.into(),
        };
        assert!(InboundHook::new("crm", hmac(b"short"), None, fields(&[("id", "i")])).is_err());
        let ok = hmac(b"0123456789abcdef");
        let hook = InboundHook::new("crm", ok, None, fields(&[("id", "i")])).expect("valid");
        assert!(!format!("{hook:?}").contains("0123456789abcdef"), "Debug hides the secret");
    }

    #[test]
    fn bounce_hooks_need_an_address_and_a_kind_and_map_provider_words() {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(InboundHook::bounces("esp", InboundAuth::Token, None, map(&[("kind", "e")])).is_err());
        assert!(InboundHook::bounces("esp", InboundAuth::Token, None, map(&[("address", "r")])).is_err());
        let err =
            InboundHook::bounces("esp", InboundAuth::Token, None, map(&[("address", "r"), ("kind", "e"), ("id", "x")]))
                .expect_err("id is a customer field");
        assert!(err.contains("unknown field `id`"), "{err}");
        assert!(
            InboundHook::bounces("e s p", InboundAuth::Token, None, map(&[("address", "r"), ("kind", "e")])).is_err()
        );
        let hook = InboundHook::bounces("esp", InboundAuth::Token, None, map(&[("address", "to.0"), ("kind", "type")]))
            .expect("valid");
        assert_eq!(hook.kind, InboundKind::Bounces);
        let item = json!({"to": [" Ann@Example.ORG "], "type": "Permanent"});
        let hard = BounceReport { address: "ann@example.org".into(), kind: Bounce::Hard, source: None };
        assert_eq!(map_bounce(&hook, &item), Ok(hard));
        let complaint = json!({"to": ["b@example.org"], "type": "spamreport"});
        assert_eq!(map_bounce(&hook, &complaint).map(|b| b.kind), Ok(Bounce::Complaint));
        let problems = map_bounce(&hook, &json!({"type": "opened"})).expect_err("two problems");
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["address", "kind"]);
    }
}
