//! What the API and importers accept: the JSON records, their validation, and the checked
//! domain values the store writes.
//!
//! This module is pure (no IO): `parse_batch` turns a request body into checked records or a
//! list of every bad record with its index, field and reason, so the HTTP layer can reject a
//! batch as a whole (nothing written) or, with `?partial=true`, write the good ones.
//!
//! Every input type denies unknown fields: a misspelt `"ammount"` is an error, not a silently
//! dropped value.

use crate::contact::{self, Currency, CustomerId, Email, Invalid, Locale, Phone, TimeZoneName, quoted};
use crate::money::Money;
use crate::{TimeRange, Timestamp};
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Most records one request may carry.
pub const MAX_BATCH: usize = 10_000;
pub use crate::contact::MAX_ID;
/// Longest free-text field (names, product names, topics) in characters, except feedback text.
const MAX_SHORT: usize = 256;
/// Longest feedback text in characters.
const MAX_TEXT: usize = 10_000;
/// Most topic tags on one feedback record.
const MAX_TOPICS: usize = 32;
/// Most lines on one order.
const MAX_LINES: usize = 1_000;

/// One bad field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecordError {
    /// Position of the record in the batch (0-based).
    pub index: usize,
    /// The field, as a path (`lines[2].quantity`); empty when the record as a whole is wrong.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Why a request body is not a batch at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The body is not valid JSON or not an array.
    #[error("the body must be a JSON array of records: {0}")]
    NotAnArray(String),
    /// More than [`MAX_BATCH`] records.
    #[error("a batch holds at most {max} records; this one has {len}")]
    TooLarge {
        /// Records in the body.
        len: usize,
        /// [`MAX_BATCH`].
        max: usize,
    },
}

/// A parsed batch: the checked records with their positions, and the rejected ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// Valid records, each with its index in the body.
    pub valid: Vec<(usize, T)>,
    /// Every problem found, ordered by index.
    pub rejected: Vec<RecordError>,
}

/// A record type the API accepts.
pub trait Record: Sized {
    /// The JSON shape.
    type Input: DeserializeOwned;
    /// The field that names the customer a record is about (`id` for customers).
    const CUSTOMER_FIELD: &'static str;
    /// Check an input, pushing every problem found (the record index is filled in later).
    fn check(input: Self::Input, errors: &mut Errors) -> Option<Self>;
}

/// Problems found in one record, and what the checks compare against.
#[derive(Debug)]
pub struct Errors {
    problems: Vec<(String, String)>,
    /// The times an order, event, feedback answer or consent change may carry (from the
    /// caller's clock and settings; see [`TimeBounds`](crate::TimeBounds)).
    times: TimeRange,
}

impl Errors {
    fn new(times: TimeRange) -> Errors {
        Errors { problems: Vec::new(), times }
    }

    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.problems.push((field.into(), reason.into()));
    }
}

/// Parse and check a request body holding a JSON array of `T` records, accepting times in
/// `times`.
pub fn parse_batch<T: Record>(body: &[u8], times: TimeRange) -> Result<Batch<T>, BatchError> {
    let raws: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| BatchError::NotAnArray(e.to_string()))?;
    if raws.len() > MAX_BATCH {
        return Err(BatchError::TooLarge { len: raws.len(), max: MAX_BATCH });
    }
    let mut batch = Batch { valid: Vec::with_capacity(raws.len()), rejected: Vec::new() };
    for (index, raw) in raws.into_iter().enumerate() {
        match parse_one::<T>(raw, times) {
            Ok(record) => batch.valid.push((index, record)),
            Err(problems) => {
                batch.rejected.extend(problems.into_iter().map(|(field, reason)| RecordError { index, field, reason }))
            }
        }
    }
    Ok(batch)
}

/// The customers a request body names, as written (each distinct id once): the `id` of each
/// customer record, the `customer_id` of other records — of the rejected records too, whose
/// reasons may quote their values. Whatever is not an array of objects with a string there
/// names no one. The store ties a remembered idempotent response to these, so erasing one of
/// the customers deletes it.
pub fn customer_ids<T: Record>(body: &[u8]) -> Vec<String> {
    /// The two fields that can name a customer; every other field is skipped unread.
    #[derive(Deserialize)]
    struct Names {
        id: Option<Value>,
        customer_id: Option<Value>,
    }
    let Ok(raws) = serde_json::from_slice::<Vec<&RawValue>>(body) else { return Vec::new() };
    let mut ids: Vec<String> = raws
        .into_iter()
        .filter_map(|raw| serde_json::from_str::<Names>(raw.get()).ok())
        .filter_map(|names| match if T::CUSTOMER_FIELD == "id" { names.id } else { names.customer_id } {
            Some(Value::String(id)) => Some(id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn parse_one<T: Record>(raw: &RawValue, times: TimeRange) -> Result<T, Vec<(String, String)>> {
    parse_with::<T, _>(&mut serde_json::Deserializer::from_str(raw.get()), times)
}

/// Check one record given as a JSON value (the CSV importer builds one per row), accepting
/// times in `times`. The errors are `(field, reason)` pairs, as in [`RecordError`].
pub fn parse_value<T: Record>(value: Value, times: TimeRange) -> Result<T, Vec<(String, String)>> {
    parse_with::<T, _>(value, times)
}

fn parse_with<'de, T: Record, D>(de: D, times: TimeRange) -> Result<T, Vec<(String, String)>>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let input: T::Input = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let mut field = if path == "." { String::new() } else { path };
        // serde_json appends " at line L column C" of the record's own text; the index and
        // field say more.
        let message = e.into_inner().to_string();
        let reason = match message.rfind(" at line ") {
            Some(at) => message[..at].to_string(),
            None => message,
        };
        // serde reports a missing field on the enclosing object; name the field itself.
        if let Some(name) = reason.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            field = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
        }
        vec![(field, reason)]
    })?;
    let mut errors = Errors::new(times);
    match T::check(input, &mut errors) {
        Some(record) if errors.problems.is_empty() => Ok(record),
        _ => Err(errors.problems),
    }
}

// ---------------------------------------------------------------------------------------------
// Field checks

/// Push the reason `result` gives under `field`; the value when there is none.
fn checked<T>(errors: &mut Errors, field: &str, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|Invalid(reason)| errors.push(field, reason)).ok()
}

fn check_text(errors: &mut Errors, field: &str, value: String, max: usize) -> Option<String> {
    let result = contact::check_text(&value, max).map(|()| value);
    checked(errors, field, result)
}

fn check_id(errors: &mut Errors, field: &str, value: String) -> Option<String> {
    // Ids are opaque and kept exactly as given (`00042` stays `00042`), like `kanta analyze`.
    let result = contact::check_id(&value).map(|()| value);
    checked(errors, field, result)
}

fn check_opt<T>(
    errors: &mut Errors,
    field: &str,
    value: Option<String>,
    check: impl FnOnce(&mut Errors, &str, String) -> Option<T>,
) -> Option<T> {
    value.and_then(|v| check(errors, field, v))
}

/// An RFC 3339 time with its zone inside the accepted range.
fn check_time(errors: &mut Errors, field: &str, value: String) -> Option<Timestamp> {
    match Timestamp::parse_rfc3339(&value) {
        Ok(t) => match errors.times.check(t) {
            Ok(t) => Some(t),
            Err(out_of_range) => {
                errors.push(field, format!("{} {out_of_range}", quoted(&value)));
                None
            }
        },
        Err(_) => {
            let hint = if NaiveDate::parse_from_str(value.get(..10).unwrap_or(""), "%Y-%m-%d").is_ok() {
                " (an RFC 3339 time with a zone, e.g. `2024-03-01T12:00:00Z` or `…+02:00`)"
            } else {
                " (expected RFC 3339, e.g. `2024-03-01T12:00:00Z`)"
            };
            errors.push(field, format!("{} is not a time with a zone{hint}", quoted(&value)));
            None
        }
    }
}

fn check_customer_id(errors: &mut Errors, field: &str, value: String) -> Option<CustomerId> {
    checked(errors, field, CustomerId::parse(value))
}

fn check_email(errors: &mut Errors, field: &str, value: String) -> Option<Email> {
    checked(errors, field, Email::parse(value))
}

fn check_phone(errors: &mut Errors, field: &str, value: String) -> Option<Phone> {
    checked(errors, field, Phone::parse(value))
}

fn check_timezone(errors: &mut Errors, field: &str, value: String) -> Option<TimeZoneName> {
    checked(errors, field, TimeZoneName::parse(value))
}

fn check_locale(errors: &mut Errors, field: &str, value: String) -> Option<Locale> {
    checked(errors, field, Locale::parse(value))
}

fn check_birthday(errors: &mut Errors, field: &str, value: String) -> Option<String> {
    match NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == value => Some(value),
        _ => {
            errors.push(field, format!("{} is not a date YYYY-MM-DD", quoted(&value)));
            None
        }
    }
}

fn check_currency(errors: &mut Errors, field: &str, value: String) -> Option<Currency> {
    checked(errors, field, Currency::parse(value))
}

/// A decimal amount given as a JSON number or a string (`12.5`, `"12.50"`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Decimal {
    /// A JSON number.
    #[schema(value_type = f64)]
    Number(serde_json::Number),
    /// A decimal in a string, for clients that keep money out of floating point.
    Text(String),
}

impl Decimal {
    fn text(&self) -> String {
        match self {
            Decimal::Number(n) => n.to_string(),
            Decimal::Text(t) => t.clone(),
        }
    }
}

/// Whether `text` has a non-zero digit after the fourth decimal: [`Money`] keeps 1/10,000, and
/// the file readers round there, but a client that posts `1.00001` should hear that it would
/// not be stored as sent (the README promises exact money). `1.50000` is exact and passes.
fn beyond_four_decimals(text: &str) -> bool {
    text.split_once('.').is_some_and(|(_, frac)| frac.bytes().take_while(u8::is_ascii_digit).skip(4).any(|d| d != b'0'))
}

fn check_money(errors: &mut Errors, field: &str, value: &Decimal) -> Option<Money> {
    let text = value.text();
    if beyond_four_decimals(&text) {
        errors.push(field, format!("{} has more than four decimals; money is kept exact to 0.0001", quoted(&text)));
        return None;
    }
    // Scientific notation (`1e-7`) from a float serialiser is a number, but not an amount.
    match Money::parse(&text, false) {
        Ok(m) if !text.contains(['e', 'E']) => Some(m),
        _ => {
            errors.push(field, format!("{} is not a decimal amount", quoted(&text)));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Customers

/// A customer as posted to `POST /v1/customers`. Fields that are absent keep their stored value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// The customer's id in the shop or CRM (opaque, kept exactly).
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number, `+` and 6–15 digits.
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// IANA time zone, e.g. `Europe/Helsinki` (used for quiet hours).
    pub timezone: Option<String>,
    /// BCP 47 language tag, e.g. `fi-FI`.
    pub locale: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// Free-form attributes; merged key by key into the stored ones.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// Consent changes, kept as history.
    pub consent: Option<Vec<ConsentInput>>,
}

/// A consent change for one channel.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// `email` or `sms`.
    pub channel: Channel,
    /// `granted` or `revoked`.
    pub status: ConsentStatus,
    /// Where the consent was given or withdrawn (`checkout`, `preference_center`, …).
    pub source: Option<String>,
    /// When (RFC 3339 with a zone); defaults to the time of the request.
    pub time: Option<String>,
}

/// A messaging channel that needs consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email.
    Email,
    /// Text messages.
    Sms,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Consent status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The customer agreed to be contacted on the channel.
    Granted,
    /// The customer withdrew (or never gave) consent.
    Revoked,
}

impl ConsentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Granted => "granted",
            ConsentStatus::Revoked => "revoked",
        }
    }
}

/// A checked customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// External id.
    pub id: CustomerId,
    /// Email address.
    pub email: Option<Email>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// Display name.
    pub name: Option<String>,
    /// IANA time zone.
    pub timezone: Option<TimeZoneName>,
    /// Language tag.
    pub locale: Option<Locale>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// Attributes to merge.
    pub attributes: Option<Map<String, Value>>,
    /// Consent changes.
    pub consent: Vec<Consent>,
}

/// A checked consent change.
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: ConsentStatus,
    /// Source.
    pub source: Option<String>,
    /// When; `None` = the time of writing.
    pub time: Option<Timestamp>,
}

impl Record for Customer {
    type Input = CustomerInput;
    const CUSTOMER_FIELD: &'static str = "id";

    fn check(input: CustomerInput, errors: &mut Errors) -> Option<Customer> {
        let id = check_customer_id(errors, "id", input.id);
        let email = check_opt(errors, "email", input.email, check_email);
        let phone = check_opt(errors, "phone", input.phone, check_phone);
        let name = check_opt(errors, "name", input.name, |e, f, v| check_text(e, f, v, MAX_SHORT));
        let timezone = check_opt(errors, "timezone", input.timezone, check_timezone);
        let locale = check_opt(errors, "locale", input.locale, check_locale);
        let birthday = check_opt(errors, "birthday", input.birthday, check_birthday);
        let mut consent = Vec::new();
        for (i, c) in input.consent.unwrap_or_default().into_iter().enumerate() {
            let source =
                check_opt(errors, &format!("consent[{i}].source"), c.source, |e, f, v| check_text(e, f, v, MAX_SHORT));
            let time = check_opt(errors, &format!("consent[{i}].time"), c.time, check_time);
            consent.push(Consent { channel: c.channel, status: c.status, source, time });
        }
        Some(Customer {
            id: id?,
            email,
            phone,
            name,
            timezone,
            locale,
            birthday,
            attributes: input.attributes,
            consent,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

/// An order as posted to `POST /v1/orders`. Posting the same id again replaces the order (a
/// status change, a refund); posting it unchanged changes nothing.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Order id (opaque, unique across the store).
    pub id: String,
    /// The customer's id; an unknown id creates the customer.
    pub customer_id: String,
    /// When the order was placed, RFC 3339 with a zone.
    pub time: String,
    /// Order total (a number or a decimal string); negative for a return.
    pub amount: Decimal,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// `completed` (default), `cancelled` or `refunded`.
    pub status: Option<OrderStatus>,
    /// Order lines.
    pub lines: Option<Vec<LineInput>>,
}

/// An order line.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// Product id or SKU.
    pub product: String,
    /// Product category.
    pub category: Option<String>,
    /// Quantity, positive.
    pub quantity: Decimal,
    /// Unit price (negative for a discount line).
    pub price: Decimal,
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// A purchase.
    #[default]
    Completed,
    /// Never fulfilled: ignored by the analysis.
    Cancelled,
    /// Paid and then refunded in full: a return in the analysis.
    Refunded,
}

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Completed => crate::purchase::COMPLETED,
            OrderStatus::Cancelled => crate::purchase::CANCELLED,
            OrderStatus::Refunded => crate::purchase::REFUNDED,
        }
    }

    /// The status from its stored name.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        match text {
            crate::purchase::COMPLETED => Some(OrderStatus::Completed),
            crate::purchase::CANCELLED => Some(OrderStatus::Cancelled),
            crate::purchase::REFUNDED => Some(OrderStatus::Refunded),
            _ => None,
        }
    }
}

/// A checked order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// External id.
    pub id: String,
    /// The customer's external id.
    pub customer_id: CustomerId,
    /// When.
    pub time: Timestamp,
    /// Total.
    pub amount: Money,
    /// Currency code.
    pub currency: Currency,
    /// Status.
    pub status: OrderStatus,
    /// Lines.
    pub lines: Vec<Line>,
}

/// A checked order line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Product.
    pub product: String,
    /// Category.
    pub category: Option<String>,
    /// Quantity (in the same 1/10,000 units as money, so `0.5` kg is exact).
    pub quantity: Money,
    /// Unit price.
    pub price: Money,
}

impl Record for Order {
    type Input = OrderInput;
    const CUSTOMER_FIELD: &'static str = "customer_id";

    fn check(input: OrderInput, errors: &mut Errors) -> Option<Order> {
        let id = check_id(errors, "id", input.id);
        let customer_id = check_customer_id(errors, "customer_id", input.customer_id);
        let time = check_time(errors, "time", input.time);
        let amount = check_money(errors, "amount", &input.amount);
        let currency = check_currency(errors, "currency", input.currency);
        let raw_lines = input.lines.unwrap_or_default();
        if raw_lines.len() > MAX_LINES {
            errors.push("lines", format!("an order holds at most {MAX_LINES} lines"));
        }
        let mut lines = Vec::with_capacity(raw_lines.len());
        for (i, l) in raw_lines.into_iter().enumerate() {
            let product = check_text(errors, &format!("lines[{i}].product"), l.product, MAX_SHORT);
            let category = check_opt(errors, &format!("lines[{i}].category"), l.category, |e, f, v| {
                check_text(e, f, v, MAX_SHORT)
            });
            let field = format!("lines[{i}].quantity");
            let quantity = check_money(errors, &field, &l.quantity).filter(|q| {
                let positive = *q > Money::ZERO;
                if !positive {
                    errors.push(&field, format!("must be positive, not {}", l.quantity.text()));
                }
                positive
            });
            let price = check_money(errors, &format!("lines[{i}].price"), &l.price);
            if let (Some(product), Some(quantity), Some(price)) = (product, quantity, price) {
                lines.push(Line { product, category, quantity, price });
            }
        }
        Some(Order {
            id: id?,
            customer_id: customer_id?,
            time: time?,
            amount: amount?,
            currency: currency?,
            status: input.status.unwrap_or_default(),
            lines,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// An event as posted to `POST /v1/events` (a page view, a login, an email open…).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Event id for de-duplication; when absent, an id is derived from the whole record, so
    /// posting the identical event twice stores it once.
    pub id: Option<String>,
    /// The customer's id; an unknown id creates the customer.
    pub customer_id: String,
    /// Event name, e.g. `page_view`, `login`, `email_open`.
    pub name: String,
    /// When, RFC 3339 with a zone.
    pub time: String,
    /// Free-form properties.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

/// A checked event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// External id (given or derived).
    pub id: String,
    /// The customer's external id.
    pub customer_id: CustomerId,
    /// Name.
    pub name: String,
    /// When.
    pub time: Timestamp,
    /// Properties.
    pub properties: Option<Map<String, Value>>,
}

impl Record for Event {
    type Input = EventInput;
    const CUSTOMER_FIELD: &'static str = "customer_id";

    fn check(input: EventInput, errors: &mut Errors) -> Option<Event> {
        let given = check_opt(errors, "id", input.id, check_id);
        let customer_id = check_customer_id(errors, "customer_id", input.customer_id);
        let name = check_text(errors, "name", input.name, 128);
        let time = check_time(errors, "time", input.time);
        let (customer_id, name, time) = (customer_id?, name?, time?);
        let id = match given {
            Some(id) => id,
            None => derived_event_id(&customer_id, &name, time, input.properties.as_ref()),
        };
        Some(Event { id, customer_id, name, time, properties: input.properties })
    }
}

/// `sha256:` and the hex SHA-256 of the record's canonical form: the same event posted twice
/// without an id gets the same id.
fn derived_event_id(
    customer: &CustomerId,
    name: &str,
    time: Timestamp,
    properties: Option<&Map<String, Value>>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // The time in microseconds, as the digest has always been taken: changing the form would
    // give an already stored event a new id and store it twice.
    let micros = time.micros().to_string();
    for part in [customer.as_str().as_bytes(), b"\0", name.as_bytes(), b"\0", micros.as_bytes(), b"\0"] {
        h.update(part);
    }
    if let Some(p) = properties {
        // serde_json keeps insertion order (preserve_order); sort keys for a canonical form.
        let mut keys: Vec<&String> = p.keys().collect();
        keys.sort();
        for k in keys {
            h.update(k.as_bytes());
            h.update(b"\0");
            h.update(p[k].to_string().as_bytes());
            h.update(b"\0");
        }
    }
    format!("sha256:{}", crate::hex(&h.finalize()))
}

// ---------------------------------------------------------------------------------------------
// Feedback

/// Feedback as posted to `POST /v1/feedback`: an NPS or CSAT answer, free text, topics.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// Feedback id (unique).
    pub id: String,
    /// The customer's id; an unknown id creates the customer.
    pub customer_id: String,
    /// When, RFC 3339 with a zone.
    pub time: String,
    /// Net Promoter answer, 0–10.
    pub nps: Option<i64>,
    /// Satisfaction answer, 1–5.
    pub csat: Option<i64>,
    /// Free text.
    pub text: Option<String>,
    /// Topic tags (`delivery`, `price`, …).
    pub topics: Option<Vec<String>>,
    /// Where it was given (`email`, `web`, `app`, `phone`, …).
    pub channel: Option<String>,
    /// The order it is about.
    pub order_id: Option<String>,
}

/// Checked feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    /// External id.
    pub id: String,
    /// The customer's external id.
    pub customer_id: CustomerId,
    /// When.
    pub time: Timestamp,
    /// 0–10.
    pub nps: Option<i64>,
    /// 1–5.
    pub csat: Option<i64>,
    /// Free text.
    pub text: Option<String>,
    /// Topic tags, lower-cased and de-duplicated.
    pub topics: Vec<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Related order id.
    pub order_id: Option<String>,
}

impl Record for Feedback {
    type Input = FeedbackInput;
    const CUSTOMER_FIELD: &'static str = "customer_id";

    fn check(input: FeedbackInput, errors: &mut Errors) -> Option<Feedback> {
        let id = check_id(errors, "id", input.id);
        let customer_id = check_customer_id(errors, "customer_id", input.customer_id);
        let time = check_time(errors, "time", input.time);
        if let Some(n) = input.nps.filter(|n| !(0..=10).contains(n)) {
            errors.push("nps", format!("must be 0–10, not {n}"));
        }
        if let Some(c) = input.csat.filter(|c| !(1..=5).contains(c)) {
            errors.push("csat", format!("must be 1–5, not {c}"));
        }
        let text = check_opt(errors, "text", input.text, |e, f, v| check_text(e, f, v, MAX_TEXT));
        if input.nps.is_none() && input.csat.is_none() && text.is_none() {
            errors.push("", "feedback needs at least one of `nps`, `csat` or `text`");
        }
        let raw_topics = input.topics.unwrap_or_default();
        if raw_topics.len() > MAX_TOPICS {
            errors.push("topics", format!("at most {MAX_TOPICS} topics"));
        }
        let mut topics: Vec<String> = Vec::new();
        for (i, t) in raw_topics.into_iter().enumerate() {
            if let Some(t) = check_text(errors, &format!("topics[{i}]"), t, 64) {
                let t = t.trim().to_lowercase();
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
        }
        let channel = check_opt(errors, "channel", input.channel, |e, f, v| check_text(e, f, v, 32));
        let order_id = check_opt(errors, "order_id", input.order_id, check_id);
        Some(Feedback {
            id: id?,
            customer_id: customer_id?,
            time: time?,
            nps: input.nps,
            csat: input.csat,
            text,
            topics,
            channel,
            order_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::TimeBounds;

    use super::*;

    /// The default bounds with the clock at 2026-12-04T12:00:00Z.
    fn times() -> TimeRange {
        TimeBounds::default().at(Timestamp::parse_rfc3339("2026-12-04T12:00:00Z").unwrap())
    }

    #[test]
    fn customer_ids_are_read_from_every_record_even_rejected_ones() {
        let customers = br#"[{"id":"a","email":"x"},{"id":"b","bogus":1},{"id":"a"},{"id":7},{"email":"y"},"z"]"#;
        assert_eq!(customer_ids::<Customer>(customers), ["a", "b"]);
        let orders = br#"[{"id":"o1","customer_id":"c2"},{"id":"o2","customer_id":"c1","lines":[{"id":"no"}]}]"#;
        assert_eq!(customer_ids::<Order>(orders), ["c1", "c2"]);
        assert!(customer_ids::<Event>(b"not json").is_empty());
        assert!(customer_ids::<Feedback>(br#"{"customer_id":"c1"}"#).is_empty());
    }

    #[test]
    fn amounts_with_more_than_four_decimals_are_rejected_not_rounded() {
        // Regression (issue 16): `"1.00001"` was stored as 1.0000.
        let errors = errors_of::<Order>(
            r#"[{"id":"a","customer_id":"c","time":"2024-01-01T00:00:00Z","amount":"1.00001","currency":"EUR"},
                {"id":"b","customer_id":"c","time":"2024-01-01T00:00:00Z","amount":0.30000000000000004,"currency":"EUR"},
                {"id":"c","customer_id":"c","time":"2024-01-01T00:00:00Z","amount":"1.50000","currency":"EUR"},
                {"id":"d","customer_id":"c","time":"2024-01-01T00:00:00Z","amount":"-2.1234","currency":"EUR",
                 "lines":[{"product":"p","quantity":1,"price":"2.12345"}]}]"#,
        );
        assert_eq!(
            errors,
            [
                (0, "amount".into(), "`1.00001` has more than four decimals; money is kept exact to 0.0001".into()),
                (
                    1,
                    "amount".into(),
                    "`0.30000000000000004` has more than four decimals; money is kept exact to 0.0001".into()
                ),
                (
                    3,
                    "lines[0].price".into(),
                    "`2.12345` has more than four decimals; money is kept exact to 0.0001".into()
                ),
            ]
        );
        assert!(!beyond_four_decimals("12"));
        assert!(!beyond_four_decimals("12.3400000"));
        assert!(beyond_four_decimals("12.00001 EUR"));
    }

    #[test]
    fn times_outside_the_accepted_range_are_rejected_naming_the_field() {
        // Regression (issue 16): one order dated in year 1 took the server down.
        let errors = errors_of::<Order>(
            r#"[{"id":"a","customer_id":"c","time":"0001-01-01T00:00:00Z","amount":"1","currency":"EUR"},
                {"id":"b","customer_id":"c","time":"2026-12-05T12:00:00Z","amount":"1","currency":"EUR"},
                {"id":"c","customer_id":"c","time":"2026-12-05T12:00:01Z","amount":"1","currency":"EUR"},
                {"id":"d","customer_id":"c","time":"1970-01-01T00:00:00Z","amount":"1","currency":"EUR"}]"#,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0],
            (
                0,
                "time".into(),
                "`0001-01-01T00:00:00Z` is before 1970-01-01T00:00:00Z, the earliest accepted time".into()
            )
        );
        assert_eq!((errors[1].0, errors[1].1.as_str()), (2, "time"));
        assert!(
            errors[1].2.starts_with("`2026-12-05T12:00:01Z` is in the future: after 2026-12-05T12:00:00Z"),
            "{}",
            errors[1].2
        );
        let events = errors_of::<Event>(r#"[{"customer_id":"c","name":"viewed","time":"1969-12-31T23:59:59Z"}]"#);
        assert_eq!((events[0].0, events[0].1.as_str()), (0, "time"));
        let feedback = errors_of::<Feedback>(r#"[{"id":"f","customer_id":"c","time":"2100-01-01T00:00:00Z","nps":9}]"#);
        assert_eq!((feedback[0].0, feedback[0].1.as_str()), (0, "time"));
        let consent = errors_of::<Customer>(
            r#"[{"id":"c","consent":[{"channel":"email","status":"granted","time":"1900-01-01T00:00:00Z"}]}]"#,
        );
        assert_eq!((consent[0].0, consent[0].1.as_str()), (0, "consent[0].time"));
        // A birthday is a date, not an event time: people born before 1970 are welcome.
        assert!(errors_of::<Customer>(r#"[{"id":"c","birthday":"1950-02-28"}]"#).is_empty());
    }

    fn errors_of<T: Record + std::fmt::Debug>(body: &str) -> Vec<(usize, String, String)> {
        let batch = parse_batch::<T>(body.as_bytes(), times()).expect("an array");
        batch.rejected.into_iter().map(|e| (e.index, e.field, e.reason)).collect()
    }

    #[test]
    fn a_valid_order_is_checked_into_exact_values() {
        let body = r#"[{"id":"o1","customer_id":"00042","time":"2024-03-01T12:00:00+02:00","amount":"12.50",
            "currency":"EUR","lines":[{"product":"coffee","quantity":0.5,"price":25}]}]"#;
        let batch = parse_batch::<Order>(body.as_bytes(), times()).expect("an array");
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let (index, order) = &batch.valid[0];
        assert_eq!(*index, 0);
        assert_eq!(order.customer_id.as_str(), "00042");
        assert_eq!(order.time.micros(), 1_709_287_200_000_000); // 10:00 UTC
        assert_eq!(order.currency.as_str(), "EUR");
        assert_eq!(order.amount.raw(), 125_000);
        assert_eq!(order.status, OrderStatus::Completed);
        assert_eq!(order.lines[0].quantity.raw(), 5_000);
        assert_eq!(order.lines[0].price.raw(), 250_000);
    }

    #[test]
    fn every_bad_field_of_every_record_is_reported_with_its_index() {
        let body = r#"[
            {"id":"ok","customer_id":"c","time":"2024-03-01T00:00:00Z","amount":1,"currency":"EUR"},
            {"id":"","customer_id":"c","time":"2024-03-01 10:00","amount":"12,5","currency":"eur",
             "lines":[{"product":"x","quantity":-1,"price":1}]},
            {"id":"t","customer_id":"c","time":"2024-03-01T00:00:00Z","amount":true,"currency":"EUR"},
            {"id":"u","customer_id":"c","time":"2024-03-01T00:00:00Z","amount":1,"currency":"EUR","ammount":2},
            {"id":"v","customer_id":"c","time":"2024-03-01T00:00:00Z","amount":1,"currency":"EUR","lines":[{"product":"p","price":1}]}
        ]"#;
        let errors = errors_of::<Order>(body);
        let fields: Vec<(usize, &str)> = errors.iter().map(|(i, f, _)| (*i, f.as_str())).collect();
        assert_eq!(
            fields,
            [
                (1, "id"),
                (1, "time"),
                (1, "amount"),
                (1, "currency"),
                (1, "lines[0].quantity"),
                (2, "amount"),
                (3, "ammount"),
                (4, "lines[0].quantity")
            ]
        );
        assert!(errors[1].2.contains("`2024-03-01 10:00` is not a time with a zone"), "{}", errors[1].2);
        assert!(errors[2].2.contains("`12,5`"), "{}", errors[2].2);
        assert!(errors[4].2.contains("must be positive, not -1"), "{}", errors[4].2);
        assert!(errors[6].2.contains("unknown field `ammount`"), "{}", errors[6].2);
        assert_eq!(errors[7].2, "missing field `quantity`");
    }

    #[test]
    fn not_an_array_and_oversized_batches_are_batch_errors() {
        assert!(matches!(parse_batch::<Order>(b"{\"id\":1}", times()), Err(BatchError::NotAnArray(_))));
        assert!(matches!(parse_batch::<Order>(b"[1,", times()), Err(BatchError::NotAnArray(_))));
        let big = format!("[{}]", vec!["{}"; MAX_BATCH + 1].join(","));
        assert_eq!(
            parse_batch::<Order>(big.as_bytes(), times()),
            Err(BatchError::TooLarge { len: MAX_BATCH + 1, max: MAX_BATCH })
        );
    }

    #[test]
    fn customer_fields_are_checked() {
        let body = r#"[{"id":"c1","email":"a@b","phone":"12","timezone":"europe/x","locale":"english",
            "birthday":"1990-02-30","consent":[{"channel":"email","status":"granted","time":"yesterday"}]},
            {"id":"c2","email":"anna@example.fi","phone":"+358 40 123 4567","timezone":"Europe/Helsinki",
             "locale":"fi-FI","birthday":"1990-02-28","consent":[{"channel":"sms","status":"revoked"}]}]"#;
        let errors = errors_of::<Customer>(body);
        let fields: Vec<&str> = errors.iter().map(|(_, f, _)| f.as_str()).collect();
        assert_eq!(fields, ["email", "phone", "timezone", "locale", "birthday", "consent[0].time"]);
        assert!(errors.iter().all(|(i, _, _)| *i == 0));
        let batch = parse_batch::<Customer>(body.as_bytes(), times()).expect("an array");
        let (index, c2) = &batch.valid[0];
        assert_eq!(*index, 1);
        assert_eq!(c2.id.as_str(), "c2");
        assert_eq!(c2.email.as_ref().map(Email::as_str), Some("anna@example.fi"));
        assert_eq!(c2.phone.as_ref().map(Phone::as_str), Some("+358 40 123 4567"), "kept as written");
        assert_eq!(c2.timezone.as_ref().map(TimeZoneName::as_str), Some("Europe/Helsinki"));
        assert_eq!(c2.locale.as_ref().map(Locale::as_str), Some("fi-FI"));
        assert_eq!(c2.consent[0].time, None, "the time of writing");
    }

    #[test]
    fn events_without_an_id_get_the_same_derived_id_for_the_same_content() {
        let body = r#"[{"customer_id":"c","name":"login","time":"2024-03-01T00:00:00Z","properties":{"a":1,"b":2}},
                      {"customer_id":"c","name":"login","time":"2024-03-01T00:00:00Z","properties":{"b":2,"a":1}},
                      {"customer_id":"c","name":"login","time":"2024-03-01T00:00:01Z","properties":{"a":1,"b":2}}]"#;
        let batch = parse_batch::<Event>(body.as_bytes(), times()).expect("an array");
        let ids: Vec<&str> = batch.valid.iter().map(|(_, e)| e.id.as_str()).collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        assert!(ids[0].starts_with("sha256:") && ids[0].len() == 7 + 64);
    }

    #[test]
    fn feedback_scales_and_content_are_checked() {
        let body = r#"[{"id":"f1","customer_id":"c","time":"2024-03-01T00:00:00Z","nps":11,"csat":0},
                      {"id":"f2","customer_id":"c","time":"2024-03-01T00:00:00Z"},
                      {"id":"f3","customer_id":"c","time":"2024-03-01T00:00:00Z","nps":3,"topics":["Delivery","delivery "," price"]}]"#;
        let errors = errors_of::<Feedback>(body);
        assert_eq!(errors[0], (0, "nps".into(), "must be 0–10, not 11".into()));
        assert_eq!(errors[1], (0, "csat".into(), "must be 1–5, not 0".into()));
        assert_eq!(errors[2].0, 1);
        let batch = parse_batch::<Feedback>(body.as_bytes(), times()).expect("an array");
        assert_eq!(batch.valid[0].1.topics, ["delivery", "price"]);
    }

    #[test]
    fn sql_looking_text_is_just_text() {
        let body = r#"[{"id":"x'); DROP TABLE customers;--","name":"Robert'); DROP TABLE students;--"}]"#;
        let batch = parse_batch::<Customer>(body.as_bytes(), times()).expect("an array");
        assert!(batch.rejected.is_empty());
        assert_eq!(batch.valid[0].1.id.as_str(), "x'); DROP TABLE customers;--");
    }
}
