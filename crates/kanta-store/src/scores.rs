//! Scores: scoring runs, the latest scores per customer, and the log of stage changes.

use kanta_domain::Timestamp;
use sqlx::types::Json;

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, query};
use crate::store::{CHUNK, Store, keyset_page, parse_ints};
use crate::{
    ModelScores, NewScoreRun, ScoreRow, ScoreRunInfo, ScoreView, StageChange, StageEvent, StoreError, rfc3339,
};

/// The status of a scoring run that wrote its scores (the `score_runs.status` column's default).
pub const COMPLETED: &str = "completed";

/// Scores: the scoring job's runs and results, and the log of lifecycle stage changes.
#[async_trait::async_trait]
pub trait ScoreStore: Send + Sync {
    /// Record a scoring run and replace the stored scores with `rows` in one transaction:
    /// customers whose stage differs from their stored one (or who had none) get a
    /// [`StageChange`]; customers absent from `rows` lose their scores.
    async fn write_scores(&self, run: &NewScoreRun, rows: &[ScoreRow]) -> Result<ScoreRunInfo, StoreError>;

    /// Record a run that stopped before writing scores, with `status` (e.g. `cancelled`) and
    /// why in `run.diagnostics`; the stored scores are untouched.
    async fn record_unfinished_run(&self, run: &NewScoreRun, status: &str) -> Result<ScoreRunInfo, StoreError>;

    /// A connection of its own to the store for a push-down scoring run (`kanta-warehouse`
    /// over [`crate::PushdownConnection::connection`]), on PostgreSQL; `None` on SQLite, which
    /// scores in memory.
    async fn pushdown_connection(&self) -> Result<Option<crate::PushdownConnection>, StoreError>;

    /// [`ScoreStore::write_scores`] from the session table [`crate::PUSHED_SCORES`] a push-down
    /// run left in `conn`, with the product groups computed in the database: the same rows,
    /// stage changes, movements and journey feed, without a customer row leaving the database.
    async fn write_pushed_scores(
        &self,
        conn: &mut crate::PushdownConnection,
        run: &NewScoreRun,
    ) -> Result<ScoreRunInfo, StoreError>;

    /// The latest scoring runs, newest first.
    async fn score_runs(&self, limit: u32) -> Result<Vec<ScoreRunInfo>, StoreError>;

    /// When the latest run that wrote scores finished, RFC 3339 (None before the first one):
    /// what the stored scores reflect. Runs that stopped early wrote none and are passed over.
    async fn scored_at(&self) -> Result<Option<String>, StoreError>;

    /// Stage changes after position `after`, oldest first (for webhooks).
    async fn stage_events(&self, after: Option<i64>, limit: u32) -> Result<(Vec<StageEvent>, Option<i64>), StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> ScoreStore for Store<DB> {
    async fn write_scores(&self, run: &NewScoreRun, rows: &[ScoreRow]) -> Result<ScoreRunInfo, StoreError> {
        let mut tx = self.writer.begin().await?;
        DB::serialize_log_writers(&mut tx, "LOCK TABLE stage_changes IN EXCLUSIVE MODE").await?;
        let run_id = insert_run(&mut tx, run, rows.len() as u64).await?;
        // The previous stages, read as three strings (see PURCHASE_CHUNK_SQL for why), sorted
        // by customer id, so the new rows can be merged against them.
        let previous = query(
            "SELECT string_agg(CAST(customer_id AS TEXT), ','), string_agg(stage, ','), \
             string_agg(CAST(stage_since AS TEXT), ',') FROM scores",
        )
        .fetch_one(&mut tx)
        .await?;
        let (mut old_ids, mut old_since) = (Vec::new(), Vec::new());
        parse_ints(previous.try_get(0)?, &mut old_ids)?;
        parse_ints(previous.try_get(2)?, &mut old_since)?;
        let stages_text: Option<String> = previous.try_get(1)?;
        let old_stages: Vec<&str> = stages_text.as_deref().map(|t| t.split(',').collect()).unwrap_or_default();
        if old_stages.len() != old_ids.len() || old_since.len() != old_ids.len() {
            return Err(StoreError::Corrupt("stored score columns of different lengths".into()));
        }
        let mut old: Vec<(i64, &str, i64)> =
            old_ids.iter().zip(&old_stages).zip(&old_since).map(|((&c, &st), &t)| (c, st, t)).collect();
        old.sort_unstable_by_key(|o| o.0);
        let mut order: Vec<&ScoreRow> = rows.iter().collect();
        order.sort_unstable_by_key(|r| r.customer);
        // Stage since, and the changes: a merge of two sorted lists.
        let now = run.started_at;
        let mut since = Vec::with_capacity(order.len());
        let mut changes: Vec<(i64, Option<&str>, &str)> = Vec::new();
        let mut j = 0;
        for r in &order {
            while j < old.len() && old[j].0 < r.customer {
                j += 1;
            }
            match old.get(j) {
                Some(&(c, stage, t)) if c == r.customer && stage == r.stage => since.push(t),
                Some(&(c, stage, _)) if c == r.customer => {
                    since.push(now);
                    changes.push((r.customer, Some(stage), r.stage));
                }
                _ => {
                    since.push(now);
                    changes.push((r.customer, None, r.stage));
                }
            }
        }
        // Replacing every row beats updating each in place: the delete empties the table at
        // once and the inserts, in key order, append.
        query("DELETE FROM scores").execute(&mut tx).await?;
        // The next statement's values are bound on this thread while the database executes the
        // current one on its own (both drivers run the statement elsewhere: SQLite on its worker
        // thread, PostgreSQL on the server), so building and inserting overlap.
        let mut chunks = order.chunks(SCORE_CHUNK).zip(since.chunks(SCORE_CHUNK));
        let mut pending = chunks.next().map(|(chunk, since)| score_insert(chunk, since, run_id));
        while let Some(mut q) = pending.take() {
            let next = chunks.next();
            let build_next = async { next.map(|(chunk, since)| score_insert(chunk, since, run_id)) };
            let (done, built) = futures_util::future::join(q.build().execute(&mut tx), build_next).await;
            done?;
            pending = built;
        }
        if old.is_empty() && !changes.is_empty() {
            // The first run: every customer's first stage, which the new rows already hold —
            // copied inside the database instead of bound value by value (a third of the run's
            // write time on a large store).
            query(
                "INSERT INTO stage_changes (customer_id, run_id, time, from_stage, to_stage) \
                 SELECT customer_id, run_id, stage_since, NULL, stage FROM scores ORDER BY customer_id",
            )
            .execute(&mut tx)
            .await?;
        }
        let bound = if old.is_empty() { &changes[..0] } else { &changes[..] };
        for chunk in bound.chunks(CHUNK * 4) {
            let mut q: QueryBuilder<DB> =
                QueryBuilder::new("INSERT INTO stage_changes (customer_id, run_id, time, from_stage, to_stage) ");
            q.push_values(chunk, |mut b, &(customer, from, to)| {
                b.push_bind(customer).push_bind(run_id).push_bind(now).push_bind(from).push_bind(to);
            });
            q.build().execute(&mut tx).await?;
        }
        // The run's movements between stages, counted here once (the dashboard's week of them
        // is a sum of a few rows per run).
        let mut movements: std::collections::BTreeMap<(Option<&str>, &str), i64> = std::collections::BTreeMap::new();
        for &(_, from, to) in &changes {
            *movements.entry((from, to)).or_default() += 1;
        }
        if !movements.is_empty() {
            let mut q: QueryBuilder<DB> =
                QueryBuilder::new("INSERT INTO stage_movements (run_id, from_stage, to_stage, customers) ");
            q.push_values(&movements, |mut b, (&(from, to), &n)| {
                b.push_bind(run_id).push_bind(from).push_bind(to).push_bind(n);
            });
            q.build().execute(&mut tx).await?;
        }
        if !changes.is_empty() {
            crate::journey::feed::stages_changed(&mut tx, run_id).await?;
        }
        let info = finish_run(&mut tx, run_id, changes.len() as u64).await?;
        tx.commit().await?;

        Ok(info)
    }

    async fn pushdown_connection(&self) -> Result<Option<crate::PushdownConnection>, StoreError> {
        DB::pushdown_connection(self).await
    }

    async fn write_pushed_scores(
        &self,
        conn: &mut crate::PushdownConnection,
        run: &NewScoreRun,
    ) -> Result<ScoreRunInfo, StoreError> {
        crate::pushed::write(conn.connection(), run).await
    }

    async fn record_unfinished_run(&self, run: &NewScoreRun, status: &str) -> Result<ScoreRunInfo, StoreError> {
        let row = query(
            "INSERT INTO score_runs (started_at, finished_at, as_of, customers, orders, model, stage_changes, \
             diagnostics, status) VALUES ($1, $2, $3, 0, $4, NULL, 0, $5, $6) RETURNING *",
        )
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(&run.as_of)
        .bind(i64::try_from(run.orders).unwrap_or(i64::MAX))
        .bind(Json(&run.diagnostics))
        .bind(status)
        .fetch_one(&self.writer)
        .await?;
        score_run_info(&row)
    }

    async fn score_runs(&self, limit: u32) -> Result<Vec<ScoreRunInfo>, StoreError> {
        query("SELECT * FROM score_runs ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(score_run_info)
            .collect()
    }

    async fn scored_at(&self) -> Result<Option<String>, StoreError> {
        let row = query("SELECT finished_at FROM score_runs WHERE status = $1 ORDER BY id DESC LIMIT 1")
            .bind(COMPLETED)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| r.try_get("finished_at").map(rfc3339)).transpose().map_err(StoreError::from)
    }

    async fn stage_events(&self, after: Option<i64>, limit: u32) -> Result<(Vec<StageEvent>, Option<i64>), StoreError> {
        let rows = query(
            "SELECT g.id, c.external_id, g.customer_id, g.run_id, g.time, g.from_stage, g.to_stage FROM stage_changes g \
             JOIN customers c ON c.id = g.customer_id WHERE g.id > $1 ORDER BY g.id LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| {
            Ok(StageEvent {
                id: r.try_get("id")?,
                customer: r.try_get("external_id")?,
                customer_key: r.try_get("customer_id")?,
                change: stage_change(r)?,
            })
        })
    }
}

/// Records a run that writes its scores for `customers`, inside the write's transaction; its
/// stage changes are counted by [`finish_run`].
pub(crate) async fn insert_run<DB: Dialect>(
    tx: &mut sqlx::Transaction<'_, DB>,
    run: &NewScoreRun,
    customers: u64,
) -> Result<i64, StoreError> {
    Ok(query(
        "INSERT INTO score_runs (started_at, finished_at, as_of, customers, orders, model, stage_changes, \
         diagnostics) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id",
    )
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(&run.as_of)
    .bind(i64::try_from(customers).unwrap_or(i64::MAX))
    .bind(i64::try_from(run.orders).unwrap_or(i64::MAX))
    .bind(run.model.as_deref())
    .bind(Json(&run.diagnostics))
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?)
}

/// Sets the stage changes of run `run_id` and reads the run back.
pub(crate) async fn finish_run<DB: Dialect>(
    tx: &mut sqlx::Transaction<'_, DB>,
    run_id: i64,
    changes: u64,
) -> Result<ScoreRunInfo, StoreError> {
    let row = query("UPDATE score_runs SET stage_changes = $1 WHERE id = $2 RETURNING *")
        .bind(i64::try_from(changes).unwrap_or(i64::MAX))
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
    score_run_info(&row)
}

/// Score rows per INSERT: 19 values each, under both databases' parameter limits (SQLite
/// 32,766).
const SCORE_CHUNK: usize = 1_700;

/// The INSERT of one chunk of score rows with their `stage_since` values.
fn score_insert<'a, DB: Dialect>(chunk: &[&'a ScoreRow], since: &'a [i64], run_id: i64) -> QueryBuilder<'a, DB> {
    let mut q: QueryBuilder<DB> = QueryBuilder::new(
        "INSERT INTO scores (customer_id, run_id, r, f, m, rfm_segment, stage, stage_since, p_alive, \
         expected_30d, expected_90d, expected_365d, p_purchase_30d, expected_spend, clv_12m, \
         next_purchase_at, value_tier, main_category, next_category) ",
    );
    q.push_values(chunk.iter().zip(since), |mut b, (s, since)| {
        let m = s.model.as_ref();
        b.push_bind(s.customer)
            .push_bind(run_id)
            .push_bind(i64::from(s.r))
            .push_bind(i64::from(s.f))
            .push_bind(i64::from(s.m))
            .push_bind(s.rfm_segment)
            .push_bind(s.stage)
            .push_bind(*since)
            .push_bind(m.map(|m| m.p_alive))
            .push_bind(m.map(|m| m.expected_30d))
            .push_bind(m.map(|m| m.expected_90d))
            .push_bind(m.map(|m| m.expected_365d))
            .push_bind(m.map(|m| m.p_purchase_30d))
            .push_bind(m.and_then(|m| m.expected_spend))
            .push_bind(m.and_then(|m| m.clv_12m))
            .push_bind(m.and_then(|m| m.next_purchase_at).map(Timestamp::micros))
            .push_bind(s.value_tier)
            .push_bind(s.main_category.as_deref())
            .push_bind(s.next_category.as_deref());
    });
    q
}

pub(crate) const SCORE_SELECT: &str = "SELECT s.run_id, r.finished_at, s.r, s.f, s.m, s.rfm_segment, s.stage, s.stage_since, \
     s.p_alive, s.expected_30d, s.expected_90d, s.expected_365d, s.p_purchase_30d, s.expected_spend, s.clv_12m, \
     s.next_purchase_at, s.value_tier, s.main_category, s.next_category FROM scores s JOIN score_runs r ON r.id = s.run_id";

pub(crate) fn score_view<R: Row>(r: &R) -> Result<ScoreView, StoreError> {
    let score = |name: &str| -> Result<u8, StoreError> {
        let v: i64 = r.try_get(name)?;
        u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("score {name} = {v}")))
    };
    let p_alive: Option<f64> = r.try_get("p_alive")?;
    let model = match p_alive {
        Some(p_alive) => Some(ModelScores {
            p_alive,
            expected_30d: r.try_get::<Option<f64>, _>("expected_30d")?.unwrap_or_default(),
            expected_90d: r.try_get::<Option<f64>, _>("expected_90d")?.unwrap_or_default(),
            expected_365d: r.try_get::<Option<f64>, _>("expected_365d")?.unwrap_or_default(),
            p_purchase_30d: r.try_get::<Option<f64>, _>("p_purchase_30d")?.unwrap_or_default(),
            expected_spend: r.try_get("expected_spend")?,
            clv_12m: r.try_get("clv_12m")?,
            next_purchase_at: r.try_get::<Option<i64>, _>("next_purchase_at")?.map(Timestamp::from_micros),
        }),
        None => None,
    };
    Ok(ScoreView {
        run_id: r.try_get("run_id")?,
        scored_at: rfc3339(r.try_get("finished_at")?),
        r: score("r")?,
        f: score("f")?,
        m: score("m")?,
        rfm_segment: r.try_get("rfm_segment")?,
        stage: r.try_get("stage")?,
        stage_since: rfc3339(r.try_get("stage_since")?),
        value_tier: r.try_get("value_tier")?,
        main_category: r.try_get("main_category")?,
        next_category: r.try_get("next_category")?,
        model,
    })
}

pub(crate) fn score_run_info<R: Row>(r: &R) -> Result<ScoreRunInfo, StoreError> {
    Ok(ScoreRunInfo {
        id: r.try_get("id")?,
        started_at: rfc3339(r.try_get("started_at")?),
        finished_at: rfc3339(r.try_get("finished_at")?),
        as_of: r.try_get("as_of")?,
        customers: r.try_get("customers")?,
        orders: r.try_get("orders")?,
        model: r.try_get("model")?,
        stage_changes: r.try_get("stage_changes")?,
        status: r.try_get("status")?,
        diagnostics: r.try_get::<Json<serde_json::Value>, _>("diagnostics")?.0,
    })
}

pub(crate) fn stage_change<R: Row>(r: &R) -> Result<StageChange, StoreError> {
    Ok(StageChange {
        run_id: r.try_get("run_id")?,
        time: rfc3339(r.try_get("time")?),
        from: r.try_get("from_stage")?,
        to: r.try_get("to_stage")?,
    })
}
