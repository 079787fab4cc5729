//! The storage suite: every test runs against SQLite and against PostgreSQL (a fresh database on
//! the server `scripts/with-postgres` starts), through the same `Storage` trait object.
//!
//! One module per aggregate of the store, each instantiated on both backends by
//! `kanta_store::on_both_backends!`.

mod audit;
mod customers;
mod dashboard;
mod goals;
mod history;
mod journeys;
mod orders;
mod scores;
mod segments;
mod triggers;
mod webhooks;

use kanta_domain::Timestamp;
use kanta_store::record::{Batch, Record, parse_batch};
use kanta_store::testing::TestDb;
use kanta_store::{
    Customer, Event, Feedback, ModelScores, NewScoreRun, Order, Purchases, Scope, ScoreRow, Secret, StoredResponse,
    WriteCounts,
};

const NOW: i64 = 1_730_000_000_000_000;

/// The instant `micros` after the epoch, for the write calls (the other calls still take `i64`).
fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn checked<T: Record + std::fmt::Debug>(json: &str) -> Vec<T> {
    let Batch { valid, rejected } =
        parse_batch::<T>(json.as_bytes(), kanta_domain::TimeRange::ALL).expect("a JSON array");
    assert!(rejected.is_empty(), "{rejected:?}");
    valid.into_iter().map(|(_, r)| r).collect()
}

fn counts(created: u64, updated: u64, unchanged: u64, customers_created: u64) -> WriteCounts {
    WriteCounts { created, updated, unchanged, customers_created }
}

const ORDERS: &str = r#"[
  {"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
   "lines":[{"product":"beans","category":"coffee","quantity":2,"price":"9.95"}]},
  {"id":"o2","customer_id":"00042","time":"2024-02-05T10:00:00Z","amount":30,"currency":"EUR"},
  {"id":"o3","customer_id":"c7","time":"2024-02-06T10:00:00+02:00","amount":12.5,"currency":"EUR"}
]"#;

/// Every purchase the store hands the scoring job, in one list.
async fn all_purchases(db: &TestDb) -> (Purchases, usize) {
    let mut all = Purchases::default();
    let mut chunks = 0;
    db.store
        .purchases(false, &mut |c| {
            chunks += 1;
            assert!(c.lines.is_empty(), "lines only when asked for");
            all.customer.extend(c.customer);
            all.time.extend(c.time);
            all.amount.extend(c.amount);
        })
        .await
        .expect("purchases");
    (all, chunks)
}

fn score_row(customer: i64, stage: &'static str, p_alive: f64) -> ScoreRow {
    ScoreRow {
        customer,
        r: 5,
        f: 3,
        m: 1,
        rfm_segment: "Champions",
        stage,
        value_tier: if p_alive > 0.8 { "top" } else { "mid" },
        main_category: Some("coffee".into()),
        next_category: (p_alive < 0.5).then(|| "grinders".to_string()),
        model: Some(ModelScores {
            p_alive,
            expected_30d: 0.5,
            expected_90d: 1.25,
            expected_365d: 4.0,
            p_purchase_30d: 0.375,
            expected_spend: Some(42.5),
            clv_12m: Some(p_alive * 1000.0),
            next_purchase_at: Some(at(NOW + 86_400_000_000 * 10)),
        }),
    }
}

fn run(at: i64) -> NewScoreRun {
    NewScoreRun {
        started_at: at,
        finished_at: at + 1_000_000,
        as_of: "2024-10-27".into(),
        orders: 3,
        model: Some("bgnbd".into()),
        diagnostics: serde_json::json!({"models": {"chosen": "bgnbd", "params": [0.25, 4.5]}}),
    }
}

/// A SQLite file made before incremental auto-vacuum is switched over (and rewritten, which
/// also clears what earlier deletions left in free pages) the first time it is opened.
#[tokio::test]
async fn an_older_sqlite_file_is_vacuumed_once_into_incremental_auto_vacuum() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let secret = "leftover-4410@example.org";
    {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("a connection");
        for sql in ["PRAGMA auto_vacuum = NONE", "PRAGMA secure_delete = OFF", "CREATE TABLE scratch (t TEXT)"] {
            sqlx::query(sql).execute(&mut conn).await.expect("setup");
        }
        sqlx::query("INSERT INTO scratch VALUES ($1)").bind(secret).execute(&mut conn).await.expect("insert");
        sqlx::query("DELETE FROM scratch").execute(&mut conn).await.expect("delete");
        conn.close().await.expect("close");
    }
    let raw = || std::fs::read(&file).expect("the file");
    let has_secret = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
    assert!(has_secret(&raw()), "a deletion without secure_delete leaves the bytes");

    let store = kanta_store::open(&url).await.expect("open");
    store.ping().await.expect("ping");
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("a connection");
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut conn).await.expect("pragma");
    assert_eq!(mode, 2, "incremental");
    assert!(!has_secret(&raw()), "the VACUUM rewrote the file");
}
