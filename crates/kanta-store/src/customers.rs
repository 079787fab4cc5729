//! Customers: profile and consent writes (also once per signed inbound request), the 360 read,
//! cursor listing, and erasure.

use std::collections::HashMap;

use kanta_domain::{CustomerId, Email, Locale, Phone, TimeZoneName, Timestamp};
use sqlx::types::Json;

use crate::dialect::Dialect;
use crate::record::Customer;
use crate::scores::{SCORE_SELECT, score_view, stage_change};
use crate::sql::{QueryBuilder, Row, Tx, query};
use crate::store::{CHUNK, Store, count_versions, customer_id, ensure_customers, keyset_page, last_per_id, money};
use crate::{
    ConsentEntry, CustomerRecord, EventView, FeedbackView, LineView, OrderView, Profile, SeenSignature, StoreError,
    WriteCounts, rfc3339,
};

/// Customers: who they are, what they consented to, everything about one of them, and
/// erasure.
#[async_trait::async_trait]
pub trait CustomerStore: Send + Sync {
    /// Create or update customers (absent fields keep their value; attributes are merged as an
    /// RFC 7396 merge patch); consent changes are appended to the history.
    async fn write_customers(&self, batch: &[Customer], now: Timestamp) -> Result<WriteCounts, StoreError>;

    /// [`CustomerStore::write_customers`] for a signed inbound request, remembering its signature in
    /// the same transaction: `None` (and nothing written) when `seen` was remembered before and
    /// has not expired, i.e. the request is a replay. Remembered signatures that expired by
    /// `now` are deleted first.
    async fn write_customers_once(
        &self,
        seen: &SeenSignature,
        batch: &[Customer],
        now: Timestamp,
    ) -> Result<Option<WriteCounts>, StoreError>;

    /// Everything about one customer, with at most `events` recent events.
    async fn customer(&self, id: &str, events: u32) -> Result<Option<CustomerRecord>, StoreError>;

    /// Customers in a stable order, after the position `after` (from the previous page).
    async fn list_customers(&self, after: Option<i64>, limit: u32) -> Result<(Vec<Profile>, Option<i64>), StoreError>;

    /// Erase a customer's personal data: profile fields, consent, events and feedback text go;
    /// webhook bodies about them are redacted and pending ones are not sent; stored idempotent
    /// responses whose request named them, or that quote their email or phone, are deleted;
    /// orders stay, attached to an anonymous id, so aggregates do not change. On SQLite the
    /// freed bytes are zeroed and the WAL emptied once it commits (see the `sqlite` module).
    /// Returns whether the customer existed. Recorded in the audit log.
    async fn erase_customer(&self, id: &str, token: Option<i64>, now: i64) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> CustomerStore for Store<DB> {
    async fn write_customers(&self, batch: &[Customer], now: Timestamp) -> Result<WriteCounts, StoreError> {
        let mut tx = self.writer.begin().await?;
        let counts = write_customers_in(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_customers_once(
        &self,
        seen: &crate::SeenSignature,
        batch: &[Customer],
        now: Timestamp,
    ) -> Result<Option<WriteCounts>, StoreError> {
        let mut tx = self.writer.begin().await?;
        query("DELETE FROM inbound_seen WHERE expires_at <= $1").bind(now.micros()).execute(&mut tx).await?;
        // The primary key decides: a concurrent transaction with the same signature waits for
        // this one and then inserts nothing.
        let inserted =
            query("INSERT INTO inbound_seen (hook, digest, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&seen.hook)
                .bind(&seen.digest)
                .bind(seen.expires_at)
                .execute(&mut tx)
                .await?
                .rows_affected();
        if inserted == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let counts = write_customers_in(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(Some(counts))
    }

    async fn customer(&self, id: &str, events: u32) -> Result<Option<CustomerRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM customers c WHERE c.external_id = $1");
        let row = query(&sql).bind(id).fetch_optional(&mut conn).await?;
        let Some(row) = row else { return Ok(None) };
        let internal: i64 = row.try_get("id")?;
        let profile = profile(&row)?;

        let consent_history: Vec<ConsentEntry> =
            query("SELECT channel, status, source, time FROM consent WHERE customer_id = $1 ORDER BY time, status")
                .bind(internal)
                .fetch_all(&mut conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(ConsentEntry {
                        channel: r.try_get("channel")?,
                        status: r.try_get("status")?,
                        source: r.try_get("source")?,
                        time: rfc3339(r.try_get("time")?),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        let mut consent: Vec<ConsentEntry> = Vec::new();
        for entry in &consent_history {
            match consent.iter_mut().find(|c| c.channel == entry.channel) {
                Some(current) => *current = entry.clone(),
                None => consent.push(entry.clone()),
            }
        }

        let order_rows = query(
            "SELECT id, external_id, time, amount, currency, status FROM orders WHERE customer_id = $1 \
             ORDER BY time, external_id",
        )
        .bind(internal)
        .fetch_all(&mut conn)
        .await?;
        let line_rows = query(
            "SELECT l.order_id, l.product, l.category, l.quantity, l.price FROM order_lines l \
             JOIN orders o ON o.id = l.order_id WHERE o.customer_id = $1 ORDER BY l.order_id, l.line_no",
        )
        .bind(internal)
        .fetch_all(&mut conn)
        .await?;
        let mut lines: HashMap<i64, Vec<LineView>> = HashMap::new();
        for r in &line_rows {
            lines.entry(r.try_get("order_id")?).or_default().push(LineView {
                product: r.try_get("product")?,
                category: r.try_get("category")?,
                quantity: money(r.try_get("quantity")?),
                price: money(r.try_get("price")?),
            });
        }
        let mut orders = Vec::with_capacity(order_rows.len());
        for r in &order_rows {
            let oid: i64 = r.try_get("id")?;
            orders.push(OrderView {
                id: r.try_get("external_id")?,
                time: rfc3339(r.try_get("time")?),
                amount: money(r.try_get("amount")?),
                currency: r.try_get("currency")?,
                status: r.try_get("status")?,
                lines: lines.remove(&oid).unwrap_or_default(),
            });
        }

        let events = query(
            "SELECT external_id, name, time, properties FROM events WHERE customer_id = $1 \
             ORDER BY time DESC, external_id LIMIT $2",
        )
        .bind(internal)
        .bind(i64::from(events))
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| {
            Ok(EventView {
                id: r.try_get("external_id")?,
                name: r.try_get("name")?,
                time: rfc3339(r.try_get("time")?),
                properties: r.try_get::<Option<Json<serde_json::Value>>, _>("properties")?.map(|j| j.0),
            })
        })
        .collect::<Result<_, StoreError>>()?;

        let feedback = query(
            "SELECT external_id, time, nps, csat, text, topics, channel, order_id FROM feedback \
             WHERE customer_id = $1 ORDER BY time DESC, external_id",
        )
        .bind(internal)
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| {
            Ok(FeedbackView {
                id: r.try_get("external_id")?,
                time: rfc3339(r.try_get("time")?),
                nps: r.try_get("nps")?,
                csat: r.try_get("csat")?,
                text: r.try_get("text")?,
                topics: r.try_get::<Option<Json<Vec<String>>>, _>("topics")?.map(|j| j.0).unwrap_or_default(),
                channel: r.try_get("channel")?,
                order_id: r.try_get("order_id")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;

        let scores = query(&format!("{SCORE_SELECT} WHERE s.customer_id = $1"))
            .bind(internal)
            .fetch_optional(&mut conn)
            .await?
            .map(|r| score_view(&r))
            .transpose()?;
        let stage_history = query(
            "SELECT run_id, time, from_stage, to_stage FROM stage_changes WHERE customer_id = $1 \
             ORDER BY id DESC LIMIT 100",
        )
        .bind(internal)
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(stage_change)
        .collect::<Result<_, StoreError>>()?;

        Ok(Some(CustomerRecord { profile, consent, consent_history, orders, events, feedback, scores, stage_history }))
    }

    async fn list_customers(&self, after: Option<i64>, limit: u32) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM customers c WHERE c.id > $1 ORDER BY c.id LIMIT $2");
        let rows = query(&sql).bind(after.unwrap_or(0)).bind(i64::from(limit) + 1).fetch_all(&self.reader).await?;
        profile_page(&rows, limit)
    }

    async fn erase_customer(&self, id: &str, token: Option<i64>, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let found = query("SELECT id, email, phone FROM customers WHERE external_id = $1")
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(found) = found else { return Ok(false) };
        let internal: i64 = found.try_get("id")?;
        let email: Option<String> = found.try_get("email")?;
        let phone: Option<String> = found.try_get("phone")?;
        // Stored idempotent responses may quote the customer (a rejected record's email or
        // phone). Those whose request named the customer's id are tied to it; a response from
        // before the ties existed, or whose record's id could not be read, is found by the
        // contact fields as they appear in its JSON body. Matching the body alone would miss
        // values that were quoted but never stored (rejected ones are not), and a short id
        // would match unrelated responses; a response deleted wrongly only loses its replay.
        let quoted = |value: &Option<String>| -> Option<String> {
            let json = serde_json::to_string(value.as_deref().filter(|v| !v.is_empty())?).ok()?;
            Some(json.get(1..json.len() - 1)?.to_string())
        };
        let contains = DB::CONTAINS;
        let sql = format!(
            "DELETE FROM idempotency WHERE (token_id, key) IN \
             (SELECT token_id, key FROM idempotency_customers WHERE customer = $1) \
             OR {contains}(body, $2) > 0 OR {contains}(body, $3) > 0"
        );
        query(&sql).bind(id).bind(quoted(&email)).bind(quoted(&phone)).execute(&mut tx).await?;
        // The anonymous id keeps the customer's orders together for the aggregates.
        let anonymous = format!("erased:{internal}");
        query(
            "UPDATE customers SET external_id = $1, email = NULL, phone = NULL, name = NULL, timezone = NULL, \
             locale = NULL, birthday = NULL, attributes = NULL, erased_at = $2, updated_at = $2, \
             version = version + 1 WHERE id = $3",
        )
        .bind(&anonymous)
        .bind(now)
        .bind(internal)
        .execute(&mut tx)
        .await?;
        query("DELETE FROM consent WHERE customer_id = $1").bind(internal).execute(&mut tx).await?;
        query("DELETE FROM events WHERE customer_id = $1").bind(internal).execute(&mut tx).await?;
        query("UPDATE feedback SET text = NULL WHERE customer_id = $1").bind(internal).execute(&mut tx).await?;
        // Webhook bodies name the customer (and carry contact fields): redact them, and what
        // was not sent yet is never sent.
        query(
            "UPDATE webhook_deliveries SET payload = $2, \
             last_error = CASE WHEN state = $3 THEN 'the customer was erased' ELSE last_error END, \
             state = CASE WHEN state = $3 THEN $4 ELSE state END WHERE customer_id = $1",
        )
        .bind(internal)
        .bind(crate::webhook::ERASED_BODY)
        .bind(crate::webhook::state::PENDING)
        .bind(crate::webhook::state::FAILED)
        .execute(&mut tx)
        .await?;
        crate::journey::run::erase_customer(&mut tx, internal, now).await?;
        crate::journey::feed::erase_customer(&mut tx, internal).await?;
        // Audit entries name the anonymous id from now on, earlier ones included: the log keeps
        // what was done, not who it was done to.
        query("UPDATE audit_log SET detail = $1 WHERE customer_id = $2")
            .bind(&anonymous)
            .bind(internal)
            .execute(&mut tx)
            .await?;
        query("INSERT INTO audit_log (time, token_id, action, customer_id, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now)
            .bind(token)
            .bind("erase")
            .bind(internal)
            .bind(&anonymous)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        DB::after_erasure(&self.writer).await?;
        Ok(true)
    }
}

/// Create or update customers inside `tx` (see [`CustomerStore::write_customers`]).
async fn write_customers_in<DB: Dialect>(
    tx: &mut Tx<DB>,
    batch: &[Customer],
    now: Timestamp,
) -> Result<WriteCounts, StoreError> {
    let records = last_per_id(batch, |c| c.id.as_str());
    let mut counts = WriteCounts::default();
    let mut returned = 0u64;
    for chunk in records.chunks(CHUNK) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO customers (external_id, email, phone, name, timezone, locale, birthday, attributes, \
             created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, c| {
            b.push_bind(c.id.as_str())
                .push_bind(c.email.as_ref().map(Email::as_str))
                .push_bind(c.phone.as_ref().map(Phone::as_str))
                .push_bind(c.name.as_deref())
                .push_bind(c.timezone.as_ref().map(TimeZoneName::as_str))
                .push_bind(c.locale.as_ref().map(Locale::as_str))
                .push_bind(c.birthday.as_deref());
            DB::push_json(&mut b, c.attributes.as_ref().map(Json));
            b.push_bind(now.micros()).push_bind(now.micros());
        });
        let merge = DB::MERGE_ATTRIBUTES;
        q.push(format!(
            " ON CONFLICT (external_id) DO UPDATE SET \
               email = COALESCE(excluded.email, customers.email), \
               phone = COALESCE(excluded.phone, customers.phone), \
               name = COALESCE(excluded.name, customers.name), \
               timezone = COALESCE(excluded.timezone, customers.timezone), \
               locale = COALESCE(excluded.locale, customers.locale), \
               birthday = COALESCE(excluded.birthday, customers.birthday), \
               attributes = {merge}, \
               updated_at = excluded.updated_at, \
               version = customers.version + 1 \
             WHERE customers.erased_at IS NULL AND ( \
               COALESCE(excluded.email, customers.email) IS DISTINCT FROM customers.email \
               OR COALESCE(excluded.phone, customers.phone) IS DISTINCT FROM customers.phone \
               OR COALESCE(excluded.name, customers.name) IS DISTINCT FROM customers.name \
               OR COALESCE(excluded.timezone, customers.timezone) IS DISTINCT FROM customers.timezone \
               OR COALESCE(excluded.locale, customers.locale) IS DISTINCT FROM customers.locale \
               OR COALESCE(excluded.birthday, customers.birthday) IS DISTINCT FROM customers.birthday \
               OR {merge} IS DISTINCT FROM customers.attributes) \
             RETURNING version"
        ));
        let rows = q.build().fetch_all(&mut *tx).await?;
        returned += rows.len() as u64;
        count_versions(&rows, &mut counts)?;
    }
    counts.unchanged = records.len() as u64 - returned;

    let with_consent: Vec<&&Customer> = records.iter().filter(|c| !c.consent.is_empty()).collect();
    if !with_consent.is_empty() {
        let ids: Vec<&CustomerId> = with_consent.iter().map(|c| &c.id).collect();
        let (map, _) = ensure_customers(tx, &ids, now).await?;
        let mut rows = Vec::new();
        for c in &with_consent {
            let cid = customer_id(&map, &c.id)?;
            for consent in &c.consent {
                rows.push((cid, consent));
            }
        }
        for chunk in rows.chunks(CHUNK) {
            let mut q: QueryBuilder<DB> =
                QueryBuilder::new("INSERT INTO consent (customer_id, channel, status, source, time) ");
            q.push_values(chunk, |mut b, (cid, c)| {
                b.push_bind(*cid)
                    .push_bind(c.channel.as_str())
                    .push_bind(c.status.as_str())
                    .push_bind(c.source.as_deref())
                    .push_bind(c.time.unwrap_or(now).micros());
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
    }
    Ok(counts)
}

/// The columns [`profile`] reads, from `customers c`.
pub(crate) const PROFILE_COLUMNS: &str = "c.id, c.external_id, c.email, c.phone, c.name, c.timezone, c.locale, c.birthday, \
     c.attributes, c.created_at, c.updated_at, c.erased_at";

/// A page of profiles (see [`keyset_page`]).
pub(crate) fn profile_page<R: Row>(rows: &[R], limit: u32) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
    keyset_page(rows, limit, profile)
}

fn profile<R: Row>(row: &R) -> Result<Profile, StoreError> {
    Ok(Profile {
        id: row.try_get("external_id")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        name: row.try_get("name")?,
        timezone: row.try_get("timezone")?,
        locale: row.try_get("locale")?,
        birthday: row.try_get("birthday")?,
        attributes: row.try_get::<Option<Json<serde_json::Value>>, _>("attributes")?.map(|j| j.0),
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        erased_at: row.try_get::<Option<i64>, _>("erased_at")?.map(rfc3339),
    })
}
