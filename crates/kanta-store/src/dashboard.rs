//! What the dashboard (`kanta-web`) reads and keeps: browser sessions, the customer list with
//! its search and filters, and the week's movements between lifecycle stages.
//!
//! Sessions are kept like tokens: only the SHA-256 of the session id is stored, and a session
//! is found only while it has not expired and its token is not revoked, so revoking a token
//! logs its browsers out at their next request.

use serde::Serialize;

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, query};
use crate::store::Store;
use crate::{Scope, ScoreRunInfo, StoreError, TokenHash};

/// A session found by its id's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The token it was made from (recorded in the audit log for what the session does).
    pub token_id: i64,
    /// The token's scope: what the session may see and do.
    pub scope: Scope,
    /// The token's name, shown in the page header.
    pub token_name: Option<String>,
    /// The token its forms carry.
    pub csrf: String,
    /// When it ends, µs since the epoch.
    pub expires_at: i64,
}

/// Churn risk, as the customer list filters it: bands of the probability of being alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnRisk {
    /// P(alive) below 0.3.
    High,
    /// P(alive) from 0.3 to below 0.7.
    Medium,
    /// P(alive) 0.7 or more.
    Low,
}

impl ChurnRisk {
    /// The bounds `[low, high)` of P(alive) in this band.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            ChurnRisk::High => (0.0, 0.3),
            ChurnRisk::Medium => (0.3, 0.7),
            ChurnRisk::Low => (0.7, f64::INFINITY),
        }
    }

    /// The band from its name (`high`, `medium`, `low`).
    pub fn parse(text: &str) -> Option<ChurnRisk> {
        match text {
            "high" => Some(ChurnRisk::High),
            "medium" => Some(ChurnRisk::Medium),
            "low" => Some(ChurnRisk::Low),
            _ => None,
        }
    }
}

/// The order of the customer list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CustomerSort {
    /// By internal id: the order customers arrived in.
    #[default]
    Arrival,
    /// Most valuable first (predicted 12-month CLV); customers without a CLV are left out.
    ValueDesc,
    /// Most at risk first (lowest P(alive)); customers without a P(alive) are left out.
    RiskDesc,
}

impl CustomerSort {
    /// The order from its name (`arrival`, `value`, `risk`).
    pub fn parse(text: &str) -> Option<CustomerSort> {
        match text {
            "arrival" => Some(CustomerSort::Arrival),
            "value" => Some(CustomerSort::ValueDesc),
            "risk" => Some(CustomerSort::RiskDesc),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerSort::Arrival => "arrival",
            CustomerSort::ValueDesc => "value",
            CustomerSort::RiskDesc => "risk",
        }
    }
}

/// Where a page of the customer list starts: after this internal id, and for a sort by value
/// after this value (keyset paging: stable while customers arrive, as fast on page 1,000 as on
/// page 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CustomerCursor {
    /// The sort value of the last row shown (none when sorting by arrival).
    pub value: Option<f64>,
    /// Its internal id.
    pub id: i64,
}

impl CustomerCursor {
    /// `ID` or `VALUE~ID`, as [`CustomerCursor::encode`] writes it.
    pub fn parse(text: &str) -> Option<CustomerCursor> {
        match text.split_once('~') {
            Some((value, id)) => {
                let value: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
                Some(CustomerCursor { value: Some(value), id: id.parse().ok().filter(|i| *i >= 0)? })
            }
            None => Some(CustomerCursor { value: None, id: text.parse().ok().filter(|i| *i >= 0)? }),
        }
    }

    /// The text form for a link.
    pub fn encode(&self) -> String {
        match self.value {
            Some(v) => format!("{v:e}~{}", self.id),
            None => self.id.to_string(),
        }
    }
}

/// Which customers the list shows (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFilter {
    /// A prefix of the id, or (ignoring case) of the email address or the name.
    pub search: Option<String>,
    /// The lifecycle stage of the latest scoring run.
    pub stage: Option<String>,
    /// The value tier of the latest scoring run.
    pub value_tier: Option<String>,
    /// The churn-risk band of the latest scoring run.
    pub risk: Option<ChurnRisk>,
    /// Members of this saved segment as of its last refresh.
    pub segment: Option<i64>,
    /// The order.
    pub sort: CustomerSort,
}

/// One row of the customer list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerListRow {
    /// The external id.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Lifecycle stage (none before the customer's first scoring).
    pub stage: Option<String>,
    /// Value tier.
    pub value_tier: Option<String>,
    /// Probability of being alive.
    pub p_alive: Option<f64>,
    /// Predicted 12-month value.
    pub clv_12m: Option<f64>,
}

/// How many customers moved from one stage to another (`from` is `None` for customers scored
/// for the first time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageMovement {
    /// The stage left.
    pub from: Option<String>,
    /// The stage entered.
    pub to: String,
    /// Customers.
    pub customers: u64,
}

/// A customer's entry into or exit from a saved segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentMoment {
    /// The segment's name.
    pub segment: String,
    /// `enter` or `exit`.
    pub kind: String,
    /// When the refresh found it, µs since the epoch.
    pub time: i64,
}

/// A customer's saved segments: where they are now and how they moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CustomerSegments {
    /// The segments the customer is a member of (as of each one's last refresh), by name.
    pub member_of: Vec<String>,
    /// Entries and exits, newest first (at most 100).
    pub history: Vec<SegmentMoment>,
}

/// A saved segment's entries and exits on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentDay {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Customers who entered.
    pub entered: u64,
    /// Customers who left.
    pub exited: u64,
}

/// The dashboard's sessions and reads.
#[async_trait::async_trait]
pub trait DashboardStore: Send + Sync {
    /// Keep a new session (its id's hash) of token `token_id` until `expires_at`; sessions
    /// that expired before `now` are deleted on the way.
    async fn create_session(
        &self,
        hash: &TokenHash,
        token_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// The session with this hash, if it has not expired at `now` and its token is not revoked.
    async fn find_session(&self, hash: &TokenHash, now: i64) -> Result<Option<SessionRow>, StoreError>;

    /// End a session (logout); returns whether it existed.
    async fn delete_session(&self, hash: &TokenHash) -> Result<bool, StoreError>;

    /// A page of customers (not erased) that pass `filter`, in its order, after `after`; the
    /// cursor of the next page, if there is one.
    async fn find_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<CustomerCursor>,
        limit: u32,
    ) -> Result<(Vec<CustomerListRow>, Option<CustomerCursor>), StoreError>;

    /// The stage changes found by the completed scoring runs that finished at or after `since`
    /// (µs), counted per (from, to), most customers first.
    async fn stage_movements(&self, since: i64) -> Result<Vec<StageMovement>, StoreError>;

    /// The latest completed scoring run, with its diagnostics.
    async fn latest_completed_run(&self) -> Result<Option<ScoreRunInfo>, StoreError>;

    /// The saved segments of the customer with external id `id` (empty for an unknown id).
    async fn customer_segments(&self, id: &str) -> Result<CustomerSegments, StoreError>;

    /// Segment `id`'s entries and exits per UTC day since `since` (µs), oldest first; days
    /// without any are left out.
    async fn segment_days(&self, id: i64, since: i64) -> Result<Vec<SegmentDay>, StoreError>;

    /// Segment `id`'s latest entries and exits, newest first.
    async fn recent_transitions(&self, id: i64, limit: u32) -> Result<Vec<crate::Transition>, StoreError>;
}

/// The last character there is: `prefix` followed by it bounds every text that starts with
/// `prefix` from above, in byte order.
const LAST_CHAR: char = '\u{10FFFF}';

#[async_trait::async_trait]
impl<DB: Dialect> DashboardStore for Store<DB> {
    async fn create_session(
        &self,
        hash: &TokenHash,
        token_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        query("DELETE FROM web_sessions WHERE expires_at < $1").bind(now).execute(&mut tx).await?;
        query("INSERT INTO web_sessions (hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&hash.0)
            .bind(token_id)
            .bind(csrf)
            .bind(now)
            .bind(expires_at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash, now: i64) -> Result<Option<SessionRow>, StoreError> {
        let row = query(
            "SELECT s.token_id, s.csrf, s.expires_at, t.scope, t.name FROM web_sessions s \
             JOIN tokens t ON t.id = s.token_id \
             WHERE s.hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(&hash.0)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let scope: String = row.try_get("scope")?;
        Ok(Some(SessionRow {
            token_id: row.try_get("token_id")?,
            scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope `{scope}`")))?,
            token_name: row.try_get("name")?,
            csrf: row.try_get("csrf")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let done = query("DELETE FROM web_sessions WHERE hash = $1").bind(&hash.0).execute(&self.writer).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<CustomerCursor>,
        limit: u32,
    ) -> Result<(Vec<CustomerListRow>, Option<CustomerCursor>), StoreError> {
        let bytes = DB::BYTE_ORDER;
        // Sorted by a score, the scores lead; by arrival, the customers do.
        let order = score_order(filter.sort);
        let key = order.map(|(column, _)| format!("s.{column}"));
        let descending = order.is_some_and(|(_, descending)| descending);
        let on_customers = filter.search.as_deref().is_some_and(|s| !s.trim().is_empty()) || filter.segment.is_some();
        if key.is_some() && !on_customers {
            return by_score(self, filter, after, limit).await;
        }
        let mut q: QueryBuilder<DB> = QueryBuilder::new(match key {
            None => {
                "SELECT c.id, c.external_id, c.email, c.name, s.stage, s.value_tier, s.p_alive, s.clv_12m \
                 FROM customers c LEFT JOIN scores s ON s.customer_id = c.id WHERE c.erased_at IS NULL"
            }
            Some(_) => {
                "SELECT c.id, c.external_id, c.email, c.name, s.stage, s.value_tier, s.p_alive, s.clv_12m \
                 FROM scores s JOIN customers c ON c.id = s.customer_id WHERE c.erased_at IS NULL"
            }
        });
        match (&key, after) {
            (None, after) => {
                q.push(" AND c.id > ");
                q.push_bind(after.map_or(0, |a| a.id));
            }
            (Some(key), Some(CustomerCursor { value: Some(v), id })) => {
                push_after(&mut q, key, descending, v, "s.customer_id", id);
            }
            (Some(key), _) => {
                q.push(format!(" AND {key} IS NOT NULL"));
            }
        }
        if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // Three prefix ranges, each a range scan of its own index (the planners union them).
            let lower = search.to_lowercase();
            q.push(format!(" AND (c.external_id{bytes} >= "));
            q.push_bind(search.to_owned());
            q.push(format!(" AND c.external_id{bytes} < "));
            q.push_bind(format!("{search}{LAST_CHAR}"));
            for column in ["c.email", "c.name"] {
                q.push(format!(" OR lower({column}){bytes} >= "));
                q.push_bind(lower.clone());
                q.push(format!(" AND lower({column}){bytes} < "));
                q.push_bind(format!("{lower}{LAST_CHAR}"));
            }
            q.push(")");
        }
        push_score_filters(&mut q, filter, "s.");
        if let Some(segment) = filter.segment {
            q.push(" AND c.id IN (SELECT customer_id FROM segment_members WHERE segment_id = ");
            q.push_bind(segment);
            q.push(")");
        }
        match key {
            None => q.push(" ORDER BY c.id LIMIT "),
            Some(key) if descending => q.push(format!(" ORDER BY {key} DESC, s.customer_id LIMIT ")),
            Some(key) => q.push(format!(" ORDER BY {key}, s.customer_id LIMIT ")),
        };
        q.push_bind(i64::from(limit) + 1);
        let rows = q.build().fetch_all(&self.reader).await?;
        let shown = &rows[..rows.len().min(limit as usize)];
        let items = shown
            .iter()
            .map(|r| {
                Ok(CustomerListRow {
                    id: r.try_get("external_id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    stage: r.try_get("stage")?,
                    value_tier: r.try_get("value_tier")?,
                    p_alive: r.try_get("p_alive")?,
                    clv_12m: r.try_get("clv_12m")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = match (shown.last(), rows.len() > shown.len()) {
            (Some(last), true) => {
                let id: i64 = last.try_get("id")?;
                let value = match filter.sort {
                    CustomerSort::Arrival => None,
                    CustomerSort::ValueDesc => last.try_get::<Option<f64>, _>("clv_12m")?,
                    CustomerSort::RiskDesc => last.try_get::<Option<f64>, _>("p_alive")?,
                };
                Some(CustomerCursor { value, id })
            }
            _ => None,
        };
        Ok((items, next))
    }

    async fn stage_movements(&self, since: i64) -> Result<Vec<StageMovement>, StoreError> {
        let rows = query(
            "SELECT g.from_stage, g.to_stage, CAST(SUM(g.customers) AS BIGINT) AS customers FROM stage_movements g \
             WHERE g.run_id IN (SELECT id FROM score_runs WHERE status = $1 AND finished_at >= $2) \
             GROUP BY g.from_stage, g.to_stage ORDER BY customers DESC, g.from_stage, g.to_stage",
        )
        .bind(crate::scores::COMPLETED)
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StageMovement {
                    from: r.try_get("from_stage")?,
                    to: r.try_get("to_stage")?,
                    customers: u64::try_from(r.try_get::<i64, _>("customers")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn latest_completed_run(&self) -> Result<Option<ScoreRunInfo>, StoreError> {
        let row = query("SELECT * FROM score_runs WHERE status = $1 ORDER BY id DESC LIMIT 1")
            .bind(crate::scores::COMPLETED)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(crate::scores::score_run_info).transpose()
    }

    async fn customer_segments(&self, id: &str) -> Result<CustomerSegments, StoreError> {
        let member_of = query(
            "SELECT s.name FROM segment_members m JOIN segments s ON s.id = m.segment_id \
             JOIN customers c ON c.id = m.customer_id WHERE c.external_id = $1 ORDER BY s.name",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name").map_err(StoreError::from))
        .collect::<Result<Vec<_>, _>>()?;
        let history = query(
            "SELECT s.name, t.kind, t.time FROM segment_transitions t JOIN segments s ON s.id = t.segment_id \
             WHERE t.customer_id = (SELECT id FROM customers WHERE external_id = $1) ORDER BY t.id DESC LIMIT 100",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| Ok(SegmentMoment { segment: r.try_get("name")?, kind: r.try_get("kind")?, time: r.try_get("time")? }))
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(CustomerSegments { member_of, history })
    }

    async fn segment_days(&self, id: i64, since: i64) -> Result<Vec<SegmentDay>, StoreError> {
        let rows = query(
            "SELECT time / $1 AS day, \
                    SUM(CASE WHEN kind = $2 THEN 1 ELSE 0 END) AS entered, \
                    SUM(CASE WHEN kind = $2 THEN 0 ELSE 1 END) AS exited \
             FROM segment_transitions WHERE segment_id = $3 AND time >= $4 GROUP BY time / $1 ORDER BY day",
        )
        .bind(DAY_MICROS)
        .bind("enter")
        .bind(id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SegmentDay {
                    day: r.try_get("day")?,
                    entered: u64::try_from(r.try_get::<i64, _>("entered")?).unwrap_or(0),
                    exited: u64::try_from(r.try_get::<i64, _>("exited")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn recent_transitions(&self, id: i64, limit: u32) -> Result<Vec<crate::Transition>, StoreError> {
        let rows = query(
            "SELECT t.id, t.segment_id, s.name, c.external_id, t.customer_id, t.kind, t.time FROM segment_transitions t \
             JOIN segments s ON s.id = t.segment_id JOIN customers c ON c.id = t.customer_id \
             WHERE t.segment_id = $1 ORDER BY t.id DESC LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(crate::segments::transition).collect()
    }
}

const DAY_MICROS: i64 = 86_400_000_000;

/// The score column a sort orders by, and whether most first (`None`: by arrival).
fn score_order(sort: CustomerSort) -> Option<(&'static str, bool)> {
    match sort {
        CustomerSort::Arrival => None,
        CustomerSort::ValueDesc => Some(("clv_12m", true)),
        CustomerSort::RiskDesc => Some(("p_alive", false)),
    }
}

/// The rows after a cursor at `(value, id)` in the order of `key`, then `id_column`.
fn push_after<DB: Dialect>(
    q: &mut QueryBuilder<'_, DB>,
    key: &str,
    descending: bool,
    value: f64,
    id_column: &str,
    id: i64,
) {
    let past = if descending { "<" } else { ">" };
    q.push(format!(" AND ({key} {past} "));
    q.push_bind(value);
    q.push(format!(" OR {key} = "));
    q.push_bind(value);
    q.push(format!(" AND {id_column} > "));
    q.push_bind(id);
    q.push(")");
}

/// The filter's conditions on the scores' own columns, each named `{prefix}column`.
fn push_score_filters<DB: Dialect>(q: &mut QueryBuilder<'_, DB>, filter: &CustomerFilter, prefix: &str) {
    if let Some(stage) = &filter.stage {
        q.push(format!(" AND {prefix}stage = "));
        q.push_bind(stage.clone());
    }
    if let Some(tier) = &filter.value_tier {
        q.push(format!(" AND {prefix}value_tier = "));
        q.push_bind(tier.clone());
    }
    if let Some(risk) = filter.risk {
        let (low, high) = risk.bounds();
        q.push(format!(" AND {prefix}p_alive >= "));
        q.push_bind(low);
        if high.is_finite() {
            q.push(format!(" AND {prefix}p_alive < "));
            q.push_bind(high);
        }
    }
}

/// Rows beyond the page asked of the scores each round of [`by_score`], for erased customers
/// (whose scores stay) to be skipped without another round.
const ERASED_SLACK: i64 = 64;

/// The customer list ordered by a score, with no condition on the customers' own columns: the
/// scores are ordered and cut to the page first, then joined to their customers. Joined first,
/// PostgreSQL sorted every one of a million rows to disk before the cut (300 ms); cut first, it
/// keeps the top rows of one scan (110 ms), and SQLite likewise. Erased customers keep their
/// scores, so the cut asks for a few rows more and, in the rare case they are not enough, goes
/// on from where it stopped.
async fn by_score<DB: Dialect>(
    store: &Store<DB>,
    filter: &CustomerFilter,
    after: Option<CustomerCursor>,
    limit: u32,
) -> Result<(Vec<CustomerListRow>, Option<CustomerCursor>), StoreError> {
    let Some((key, descending)) = score_order(filter.sort) else { return Ok((Vec::new(), None)) };
    if limit == 0 {
        return Ok((Vec::new(), None));
    }
    let order = if descending { "DESC" } else { "ASC" };
    let chunk = i64::from(limit) + 1 + ERASED_SLACK;
    let mut cursor = after;
    let mut found: Vec<(CustomerListRow, CustomerCursor)> = Vec::new();
    loop {
        let mut q: QueryBuilder<DB> = QueryBuilder::new(format!(
            "SELECT c.external_id, c.email, c.name, c.erased_at, s.customer_id, s.stage, s.value_tier, s.p_alive, \
             s.clv_12m FROM (SELECT customer_id, stage, value_tier, p_alive, clv_12m FROM scores \
             WHERE {key} IS NOT NULL"
        ));
        if let Some(CustomerCursor { value: Some(v), id }) = cursor {
            push_after(&mut q, key, descending, v, "customer_id", id);
        }
        push_score_filters(&mut q, filter, "");
        q.push(format!(" ORDER BY {key} {order}, customer_id LIMIT "));
        q.push_bind(chunk);
        q.push(format!(") s JOIN customers c ON c.id = s.customer_id ORDER BY s.{key} {order}, s.customer_id"));
        let rows = q.build().fetch_all(&store.reader).await?;
        for r in &rows {
            let id: i64 = r.try_get("customer_id")?;
            let value: Option<f64> = r.try_get(key)?;
            cursor = Some(CustomerCursor { value, id });
            if r.try_get::<Option<i64>, _>("erased_at")?.is_some() {
                continue;
            }
            let row = CustomerListRow {
                id: r.try_get("external_id")?,
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                stage: r.try_get("stage")?,
                value_tier: r.try_get("value_tier")?,
                p_alive: r.try_get("p_alive")?,
                clv_12m: r.try_get("clv_12m")?,
            };
            found.push((row, CustomerCursor { value, id }));
        }
        if found.len() > limit as usize || (rows.len() as i64) < chunk {
            break;
        }
    }
    let next = (found.len() > limit as usize).then(|| found[limit as usize - 1].1);
    found.truncate(limit as usize);
    Ok((found.into_iter().map(|(row, _)| row).collect(), next))
}
