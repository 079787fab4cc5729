//! The audit log (exports and erasures) and the responses remembered for idempotency keys.

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, query};
use crate::store::{CHUNK, Store};
use crate::{AuditEntry, StoreError, StoredResponse, rfc3339};

/// The audit log and idempotency keys.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Audit log entries after position `after`, oldest first.
    async fn audit_entries(&self, after: Option<i64>, limit: u32)
    -> Result<(Vec<AuditEntry>, Option<i64>), StoreError>;

    /// Append to the audit log.
    async fn audit(&self, token: Option<i64>, action: &str, customer: Option<&str>, now: i64)
    -> Result<(), StoreError>;

    /// The stored response for an idempotency key, if it was remembered at or after `since`;
    /// an older one has expired and is never replayed.
    async fn idempotent_response(
        &self,
        token: i64,
        key: &str,
        since: i64,
    ) -> Result<Option<StoredResponse>, StoreError>;

    /// Remember the response for an idempotency key (the first one wins), tied to `customers`,
    /// the external ids its request named ([`record::customer_ids`]), so that erasing one of
    /// them deletes it. Responses remembered before `expired_before` are deleted in the same
    /// transaction.
    async fn remember_response(
        &self,
        token: i64,
        key: &str,
        response: &StoredResponse,
        customers: &[String],
        now: i64,
        expired_before: i64,
    ) -> Result<(), StoreError>;

    /// Delete the responses remembered before `expired_before`; returns how many.
    async fn expire_responses(&self, expired_before: i64) -> Result<u64, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> AuditStore for Store<DB> {
    async fn audit_entries(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        let rows = query("SELECT id, time, token_id, action, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let more = rows.len() > limit as usize;
        let entries = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    time: rfc3339(r.try_get("time")?),
                    token_id: r.try_get("token_id")?,
                    action: r.try_get("action")?,
                    customer: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more { entries.last().map(|e| e.id) } else { None };
        Ok((entries, next))
    }

    async fn audit(
        &self,
        token: Option<i64>,
        action: &str,
        customer: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        query(
            "INSERT INTO audit_log (time, token_id, action, customer_id, detail) \
             VALUES ($1, $2, $3, (SELECT id FROM customers WHERE external_id = $4), $4)",
        )
        .bind(now)
        .bind(token)
        .bind(action)
        .bind(customer)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn idempotent_response(
        &self,
        token: i64,
        key: &str,
        since: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row = query(
            "SELECT request_hash, status, body FROM idempotency WHERE token_id = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(token)
        .bind(key)
        .bind(since)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i64 = row.try_get("status")?;
        Ok(Some(StoredResponse {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
            body: row.try_get("body")?,
        }))
    }

    async fn remember_response(
        &self,
        token: i64,
        key: &str,
        response: &StoredResponse,
        customers: &[String],
        now: i64,
        expired_before: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        // Expired responses go first, so an expired one under this key gives way to this one.
        query("DELETE FROM idempotency WHERE created_at < $1").bind(expired_before).execute(&mut tx).await?;
        let inserted = query(
            "INSERT INTO idempotency (token_id, key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(token)
        .bind(key)
        .bind(&response.request_hash)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(now)
        .execute(&mut tx)
        .await?
        .rows_affected();
        // The first response wins, with the customers of its own request.
        if inserted == 1 {
            for chunk in customers.chunks(CHUNK) {
                let mut b = QueryBuilder::new("INSERT INTO idempotency_customers (token_id, key, customer) ");
                b.push_values(chunk, |mut row, customer| {
                    row.push_bind(token).push_bind(key).push_bind(customer);
                });
                b.push(" ON CONFLICT DO NOTHING");
                b.build().execute(&mut tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_responses(&self, expired_before: i64) -> Result<u64, StoreError> {
        let done =
            query("DELETE FROM idempotency WHERE created_at < $1").bind(expired_before).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}
