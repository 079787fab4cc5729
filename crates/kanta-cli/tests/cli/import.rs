//! `kanta import`: files into the store, idempotently, with the API's validation.

use std::path::Path;

use super::support::{kanta, write};

fn store_counts(db: &str) -> kanta_store::Counts {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async { kanta_store::open(db).await.expect("store").counts().await.expect("counts") })
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("k.db").display())
}

const ORDER_LINES: &str = "\
order_id,customer_id,order_date,product,amount
A1,00042,2024-01-05T10:00:00Z,beans,10.00
A1,00042,2024-01-05T10:00:00Z,mug,5.50
A2,00042,2024-02-01T09:00:00Z,beans,10.00
A3,c7,2024-02-03T12:00:00+02:00,beans,-3.00
";

#[test]
fn importing_orders_twice_changes_nothing_and_lines_are_summed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite(dir.path());
    let file = write(dir.path(), "orders.csv", ORDER_LINES.as_bytes());
    let first = kanta(&["import", "orders", file.to_str().expect("utf-8"), "--currency", "EUR", "--db", &db]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("imported 3 orders"), "{}", first.stderr);
    assert!(first.stderr.contains("3 created, 0 updated, 0 unchanged; 2 new customers"), "{}", first.stderr);
    let second = kanta(&["import", "orders", file.to_str().expect("utf-8"), "--currency", "EUR", "--db", &db]);
    assert!(second.stderr.contains("0 created, 0 updated, 3 unchanged; 0 new customers"), "{}", second.stderr);
    let c = store_counts(&db);
    assert_eq!((c.customers, c.orders), (2, 3));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let record = runtime
        .block_on(async { kanta_store::open(&db).await.expect("store").customer("00042", 0).await.expect("read") })
        .expect("customer 00042");
    let orders: Vec<(&str, f64, &str)> =
        record.orders.iter().map(|o| (o.id.as_str(), o.amount, o.currency.as_str())).collect();
    assert_eq!(orders, [("A1", 15.5, "EUR"), ("A2", 10.0, "EUR")]);
    // The file's `product` column is kept: each order has its lines, one unit of each amount.
    let lines: Vec<Vec<(&str, f64, f64)>> = record
        .orders
        .iter()
        .map(|o| o.lines.iter().map(|l| (l.product.as_str(), l.quantity, l.price)).collect())
        .collect();
    assert_eq!(lines, [vec![("beans", 1.0, 10.0), ("mug", 1.0, 5.5)], vec![("beans", 1.0, 10.0)]]);
    assert!(first.stderr.contains("product = product (detected)"), "{}", first.stderr);
}

/// `kanta generate` writes product and category columns; importing them from CSV and from
/// Parquet stores the same lines, and scoring turns them into product groups.
#[test]
fn generated_lines_import_alike_from_csv_and_parquet_and_scoring_finds_each_main_category() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file_lines = 0;
    let mut bought: std::collections::HashMap<String, std::collections::BTreeSet<String>> = Default::default();
    let mut stored = Vec::new();
    for format in ["csv", "parquet"] {
        let file = dir.path().join(format!("shop.{format}"));
        let file = file.to_str().expect("utf-8");
        let made = kanta(&["generate", "--customers", "150", "--seed", "5", "--out", file]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        if format == "csv" {
            let text = std::fs::read_to_string(file).expect("read the CSV");
            for row in text.lines().skip(1) {
                let cells: Vec<&str> = row.split(',').collect();
                file_lines += 1;
                bought.entry(cells[1].to_owned()).or_default().insert(cells[4].to_owned());
            }
        }
        let db = format!("sqlite://{}", dir.path().join(format!("{format}.db")).display());
        let run = kanta(&["import", "orders", file, "--currency", "EUR", "--db", &db]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        stored.push(stored_lines(&db, bought.keys()));
        if format == "csv" {
            let run = kanta(&["score", "--db", &db]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let store = runtime.block_on(kanta_store::open(&db)).expect("store");
            let mut with_category = 0;
            for (customer, categories) in &bought {
                let record = runtime.block_on(store.customer(customer, 0)).expect("read").expect("customer");
                let scores = record.scores.expect("scored");
                let main = scores.main_category.expect("a customer with lines has a main category");
                assert!(categories.contains(&main), "{customer}: {main} not in {categories:?}");
                with_category += 1;
            }
            assert_eq!(with_category, 150);
        }
    }
    assert_eq!(stored[0].len(), file_lines);
    assert_eq!(stored[0], stored[1], "CSV and Parquet store the same lines");
}

/// The customers' stored lines as (order, line number, product, category, quantity, price), sorted.
fn stored_lines<'a>(
    db: &str,
    customers: impl Iterator<Item = &'a String>,
) -> Vec<(String, usize, String, Option<String>, String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = runtime.block_on(kanta_store::open(db)).expect("store");
    let mut out = Vec::new();
    for id in customers {
        let record = runtime.block_on(store.customer(id, 0)).expect("read").expect("customer");
        for o in record.orders {
            for (no, l) in o.lines.into_iter().enumerate() {
                out.push((o.id.clone(), no, l.product, l.category, l.quantity.to_string(), l.price.to_string()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn orders_without_ids_get_stable_derived_ids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite(dir.path());
    // Two identical rows are two orders (occurrence 1 and 2), the same on every import.
    let file = write(dir.path(), "o.csv", b"customer,date,amount\na,2024-01-01,5\na,2024-01-01,5\nb,2024-01-02,7\n");
    for expected in ["3 created", "3 unchanged"] {
        let run = kanta(&["import", "orders", file.to_str().expect("utf-8"), "--currency", "EUR", "--db", &db]);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
}

#[test]
fn a_bad_row_stops_the_import_after_storing_the_rows_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite(dir.path());
    let file = write(
        dir.path(),
        "customers.csv",
        b"id,email,name,consent_email,tier\nc1,anna@example.fi,Anna,granted,gold\nc2,not-an-email,Bo,,\nc3,c@example.fi,Cy,,\n",
    );
    let run = kanta(&["import", "customers", file.to_str().expect("utf-8"), "--db", &db]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("customers.csv:3: column `email`: `not-an-email` is not an email address"),
        "{}",
        run.stderr
    );
    assert_eq!(store_counts(&db).customers, 1, "the row before the bad one is kept");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let record = runtime
        .block_on(async { kanta_store::open(&db).await.expect("store").customer("c1", 0).await.expect("read") })
        .expect("c1");
    assert_eq!(record.profile.attributes, Some(serde_json::json!({"tier": "gold"})));
    assert_eq!(record.consent[0].status, "granted");
    assert_eq!(record.consent[0].source.as_deref(), Some("import"));
}

#[test]
fn events_and_feedback_import_with_properties_and_topics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite(dir.path());
    let events = write(
        dir.path(),
        "events.csv",
        b"customer_id,name,time,path\nc1,page_view,2024-01-01T10:00:00Z,/coffee\nc1,login,2024-01-02T10:00:00Z,\n",
    );
    let run = kanta(&["import", "events", events.to_str().expect("utf-8"), "--db", &db]);
    assert!(run.stderr.contains("2 created"), "{}", run.stderr);
    let feedback = write(
        dir.path(),
        "feedback.csv",
        b"id,customer_id,time,nps,topics,text\nf1,c1,2024-01-03T10:00:00Z,3,Delivery; price,late\n",
    );
    let run = kanta(&["import", "feedback", feedback.to_str().expect("utf-8"), "--db", &db]);
    assert!(run.stderr.contains("1 created"), "{}", run.stderr);
    let bad = write(dir.path(), "bad.csv", b"id,customer_id,time,nps,mood\nf2,c1,2024-01-03T10:00:00Z,3,sad\n");
    let run = kanta(&["import", "feedback", bad.to_str().expect("utf-8"), "--db", &db]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.csv:2: column `mood`: unknown column"), "{}", run.stderr);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let record = runtime
        .block_on(async { kanta_store::open(&db).await.expect("store").customer("c1", 10).await.expect("read") })
        .expect("c1");
    assert_eq!(record.events[1].properties, Some(serde_json::json!({"path": "/coffee"})));
    assert_eq!(record.feedback[0].topics, ["delivery", "price"]);
}

#[test]
fn orders_import_into_postgres_too() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "orders.csv", ORDER_LINES.as_bytes());
    for expected in ["3 created", "3 unchanged"] {
        let run = kanta(&["import", "orders", file.to_str().expect("utf-8"), "--currency", "EUR", "--db", &db.url]);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
    assert_eq!(runtime.block_on(db.store.counts()).expect("counts").orders, 3);
}

/// Regression (issue 16): times outside the `[ingest]` range are refused by the importer as by
/// the API, naming the line (or the order, whose lines are summed first), and a settings file
/// can widen the range.
#[test]
fn times_outside_the_accepted_range_stop_the_import_naming_the_line_or_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite(dir.path());
    let orders =
        write(dir.path(), "o.csv", b"order_id,customer_id,date,amount\no1,c1,2024-01-05,10\no2,c1,1900-01-01,5\n");
    let run = kanta(&["import", "orders", orders.to_str().expect("utf-8"), "--currency", "EUR", "--db", &db]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "o.csv: order `o2`: field `time`: `1900-01-01T00:00:00Z` is before 1970-01-01T00:00:00Z, the earliest accepted time"
        ),
        "{}",
        run.stderr
    );
    let events = write(
        dir.path(),
        "e.csv",
        b"customer_id,name,time\nc1,viewed,2024-01-05T00:00:00Z\nc1,viewed,2999-01-05T00:00:00Z\n",
    );
    let run = kanta(&["import", "events", events.to_str().expect("utf-8"), "--db", &db]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("e.csv:3: column `time`: `2999-01-05T00:00:00Z` is in the future"), "{}", run.stderr);
    assert_eq!(store_counts(&db).events, 1, "the line before the bad one is stored");
    let config = write(dir.path(), "kanta.toml", b"[ingest]\nearliest_time = \"1900-01-01T00:00:00Z\"\n");
    let run = kanta(&[
        "import",
        "orders",
        orders.to_str().expect("utf-8"),
        "--currency",
        "EUR",
        "--db",
        &db,
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(store_counts(&db).orders, 2);
}
