//! `kanta analyze --engine`: the analysis pushed down to PostgreSQL gives the same
//! `summary.json` and the same per-customer scores as `kanta analyze` on the file (floats to
//! 1e-9 relative, money and counts exactly), names are quoted safely, and bad sources get
//! messages that name the engine, the table and the column.

use std::collections::HashMap;
use std::path::Path;

use sqlx::Connection;

use crate::support::{analyze_ok, customers, kanta, repo_data, summary};

/// A fresh database on the test server (`None`: no server, the test is skipped unless
/// `KANTA_REQUIRE_POSTGRES=1`), with a runtime to talk to it.
fn database() -> Option<(tokio::runtime::Runtime, kanta_store::testing::TestDb)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database")?;
    Some((runtime, db))
}

/// Runs `statements`, then copies `csv` (with a header line) into `table`.
fn load(runtime: &tokio::runtime::Runtime, url: &str, statements: &[&str], table: &str, csv: &[u8]) {
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        for s in statements {
            sqlx::raw_sql(s).execute(&mut conn).await.expect(s);
        }
        let mut copy =
            conn.copy_in_raw(&format!("COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)")).await.expect("copy");
        copy.send(csv).await.expect("send");
        copy.finish().await.expect("finish copy");
    });
}

fn scalar(runtime: &tokio::runtime::Runtime, url: &str, sql: &str) -> i64 {
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await.expect(sql)
    })
}

/// `kanta analyze --engine URL ARGS… --out DIR -q --download`, expected to succeed.
fn pushdown(url: &str, out: &Path, args: &[&str]) {
    let mut all = vec!["analyze", "--engine", url, "--out", out.to_str().expect("utf-8"), "-q", "--download"];
    all.extend_from_slice(args);
    let run = kanta(&all);
    assert_eq!(run.code, 0, "kanta {all:?} failed:\n{}", run.stderr);
}

/// Asserts two JSON values are equal, floats to 1e-9 relative; reports the path.
fn assert_same_json(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.dedup();
            for k in keys {
                assert_same_json(&x[k], y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"));
            }
            assert_eq!(x.len(), y.len(), "{path}: keys {:?} vs {:?}", x.keys(), y.keys());
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_same_json(p, q, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (p, q) = (x.as_f64().expect("number"), y.as_f64().expect("number"));
            assert!((p - q).abs() <= 1e-9 * p.abs().max(q.abs()), "{path}: {p} vs {q}");
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// Asserts the file run and the push-down wrote the same report and customer table.
fn assert_same_outputs(file: &Path, engine: &Path) {
    let (a, b) = (summary(file), summary(engine));
    for section in ["summary", "models", "models_skipped"] {
        assert_same_json(&a[section], &b[section], section);
    }
    assert_eq!(a["summary"]["revenue"], b["summary"]["revenue"], "money exactly");
    let (a, b) = (customers(file), customers(engine));
    assert_eq!(a.len(), b.len(), "customers");
    let floats = [
        "recency",
        "T",
        "monetary",
        "average_order_value",
        "p_alive",
        "expected_purchases_30d",
        "expected_purchases_90d",
        "expected_purchases_365d",
        "p_purchase_30d",
        "p_purchase_90d",
        "expected_spend",
        "clv_12m",
    ];
    for (id, row) in &a {
        let other: &HashMap<String, String> = b.get(id).unwrap_or_else(|| panic!("customer {id} missing"));
        for (column, value) in row {
            let theirs = &other[column];
            if floats.contains(&column.as_str()) && value != theirs {
                let (p, q): (f64, f64) = (value.parse().expect("float"), theirs.parse().expect("float"));
                assert!((p - q).abs() <= 1e-9 * p.abs().max(q.abs()), "{id} {column}: {value} vs {theirs}");
            } else {
                assert_eq!(value, theirs, "{id} {column}");
            }
        }
    }
}

/// CDNOW's master log as the table a warehouse would hold: text ids, a DATE, NUMERIC dollars.
fn cdnow_csv() -> Vec<u8> {
    let text = std::fs::read_to_string(repo_data("CDNOW_master.txt")).expect("CDNOW");
    let mut csv = String::from("customer_id,date,number_of_cds,dollar_value\n");
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv.push_str(&format!("{},{},{},{}\n", f[0], f[1], f[2], f[3]));
    }
    csv.into_bytes()
}

#[test]
fn cdnow_pushed_down_to_postgres_matches_the_file_analysis() {
    let Some((runtime, db)) = database() else { return };
    let create = "CREATE TABLE cdnow (customer_id TEXT, date DATE, number_of_cds INT, dollar_value NUMERIC(12, 2))";
    load(&runtime, &db.url, &[create], "cdnow", &cdnow_csv());
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, engine) = (dir.path().join("file"), dir.path().join("engine"));
    analyze_ok(&repo_data("CDNOW_master.txt"), &file, &[]);
    pushdown(&db.url, &engine, &["--table", "cdnow"]);
    assert_same_outputs(&file, &engine);
    let report = summary(&engine);
    let moved = &report["pushdown"];
    assert_eq!(moved["rows_aggregated"], 69_659);
    assert_eq!(moved["customers"], 23_502);
    // 23,502 customers share 11,102 distinct day histories: less than half moved.
    assert_eq!(moved["distinct_histories"], 11_102);
    assert!(moved["bytes_received"].as_u64().expect("bytes") < 1_000_000, "{moved}");
    // The score table stays in the engine, one row per customer, the customer table's columns.
    assert_eq!(scalar(&runtime, &db.url, "SELECT COUNT(*) FROM kanta_scores"), 23_502);
    let columns: Vec<String> = runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'kanta_scores' ORDER BY ordinal_position",
        )
        .fetch_all(&mut conn)
        .await
        .expect("columns")
    });
    let header = std::fs::read_to_string(file.join("customers.csv")).expect("csv");
    assert_eq!(columns.join(","), header.lines().next().expect("header"));
}

/// The generated shop (multi-line orders, returns, times with a zone) with a zero-amount order,
/// a customer who only returned and an order past midnight UTC added.
fn shop_csv(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("shop.csv");
    let run = kanta(&["generate", "--customers", "3000", "--seed", "7", "--out", path.to_str().expect("utf-8"), "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut text = std::fs::read_to_string(&path).expect("shop");
    text.push_str("Z000000001,C0000001,2024-03-03T10:00:00Z,P0001,tea,1,0,0\n");
    text.push_str("Z000000002,ONLYRETURNS,2024-03-04T10:00:00Z,P0001,tea,-1,5.00,-5.00\n");
    // 23:30 at UTC−05:00 is the next day in UTC, as the file reader counts it.
    text.push_str("Z000000003,C0000002,2024-05-01T23:30:00-05:00,P0002,tea,2,4.25,8.50\n");
    std::fs::write(&path, &text).expect("write shop");
    path
}

#[test]
fn a_generated_shop_pushed_down_matches_with_every_flag_that_changes_the_definitions() {
    let Some((runtime, db)) = database() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let shop = shop_csv(dir.path());
    let create = "CREATE TABLE shop (order_id TEXT, customer_id TEXT, order_date TIMESTAMPTZ, product_id TEXT, \
                  category TEXT, quantity INT, unit_price NUMERIC(10, 2), amount NUMERIC(12, 2))";
    load(&runtime, &db.url, &[create], "shop", &std::fs::read(&shop).expect("shop"));
    for (i, flags) in [
        &[][..],
        &["--keep-zero", "--as-of", "2024-06-30", "--period", "week"][..],
        &["--lapse-days", "45", "--loyal-orders", "3", "--model", "paretonbd"][..],
        &["--model", "none"][..],
    ]
    .iter()
    .enumerate()
    {
        let (file, engine) = (dir.path().join(format!("file{i}")), dir.path().join(format!("engine{i}")));
        analyze_ok(&shop, &file, flags);
        let mut args = vec!["--table", "shop"];
        args.extend_from_slice(flags);
        pushdown(&db.url, &engine, &args);
        assert_same_outputs(&file, &engine);
    }
    // quantity × unit price when there is no amount column: the same orders.
    let (file, engine) = (dir.path().join("file-q"), dir.path().join("engine-q"));
    analyze_ok(&shop, &file, &["--quantity-col", "quantity", "--price-col", "unit_price"]);
    pushdown(
        &db.url,
        &engine,
        &["--query", "SELECT order_id, customer_id, order_date, quantity, unit_price FROM shop"],
    );
    assert_same_outputs(&file, &engine);
}

#[test]
fn names_that_look_like_sql_are_quoted_not_run() {
    let Some((runtime, db)) = database() else { return };
    let statements = [
        r#"CREATE SCHEMA "my.schema""#,
        r#"CREATE TABLE "my.schema"."Orders ""2024""; DROP TABLE keep; --" ("Customer ID" TEXT, "when?" DATE, "sum; DROP TABLE keep" NUMERIC)"#,
        "CREATE TABLE keep (x INT)",
    ];
    let rows: String = std::iter::once("c,d,s\n".to_owned())
        .chain((0..60).map(|i| format!("c{},2024-0{}-1{},{}.50\n", i % 20, 1 + i % 5, i % 9, 10 + i)))
        .collect();
    load(&runtime, &db.url, &statements, r#""my.schema"."Orders ""2024""; DROP TABLE keep; --""#, rows.as_bytes());
    let dir = tempfile::tempdir().expect("temp dir");
    let run = kanta(&[
        "analyze",
        "--engine",
        &db.url,
        "--table",
        r#""my.schema"."Orders ""2024""; DROP TABLE keep; --""#,
        "--customer-col",
        "Customer ID",
        "--time-col",
        "when?",
        "--amount-col",
        "sum; DROP TABLE keep",
        "--order-col",
        "none",
        "--into",
        r#"scores"; DROP TABLE keep; --"#,
        "--model",
        "none",
        "--out",
        dir.path().to_str().expect("utf-8"),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(dir.path())["summary"]["customers"], 20);
    assert_eq!(scalar(&runtime, &db.url, "SELECT COUNT(*) FROM keep"), 0, "the table is still there");
    assert_eq!(scalar(&runtime, &db.url, r#"SELECT COUNT(*) FROM "scores""; DROP TABLE keep; --""#), 20);
}

#[test]
fn unreachable_engines_missing_tables_and_wrong_types_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8");
    let run =
        kanta(&["analyze", "--engine", "postgres://kanta:hunter2@127.0.0.1:1/shop", "--table", "orders", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect to postgres://kanta:***@127.0.0.1:1/shop"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);

    let Some((runtime, db)) = database() else { return };
    let run = kanta(&["analyze", "--engine", &db.url, "--table", "public.missing", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let engine = kanta_store::redact(&db.url);
    assert!(
        run.stderr.contains(&format!(
            "cannot read table `public.missing` on {engine}: relation \"public.missing\" does not exist"
        )),
        "{}",
        run.stderr
    );

    let create = "CREATE TABLE texty (customer_id TEXT, order_date TEXT, amount NUMERIC)";
    load(&runtime, &db.url, &[create], "texty", b"customer_id,order_date,amount\nc1,2024-01-01,5\n");
    let run = kanta(&["analyze", "--engine", &db.url, "--table", "texty", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "column `order_date` (order time) of table `texty` on {engine} is text; kanta needs a date or a timestamp there"
        )),
        "{}",
        run.stderr
    );
    let run = kanta(&[
        "analyze",
        "--engine",
        &db.url,
        "--query",
        "SELECT customer_id, CAST(order_date AS DATE) AS order_date, amount FROM texty",
        "--model",
        "none",
        "-o",
        out,
        "-q",
    ]);
    assert_eq!(run.code, 0, "casting in --query is the way out: {}", run.stderr);

    // Four rows: one good, one without an amount, one without a customer, one without both:
    // three bad rows (the last counted once), two in each column.
    let create = "CREATE TABLE holes (customer_id TEXT, order_date DATE, amount NUMERIC)";
    let rows = b"customer_id,order_date,amount\nc1,2024-01-01,5\nc2,2024-01-02,\n,2024-01-03,7\n,2024-01-04,\n";
    load(&runtime, &db.url, &[create], "holes", rows);
    let run = kanta(&["analyze", "--engine", &db.url, "--table", "holes", "--max-errors", "2", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "2 rows of table `holes` on {engine} have no customer: column `customer_id` is NULL or empty there; --max-errors allows 2 bad rows"
        )),
        "{}",
        run.stderr
    );
    let run =
        kanta(&["analyze", "--engine", &db.url, "--table", "holes", "--max-errors", "3", "--model", "none", "-o", out]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("skipped: 2 rows with no amount (column `amount` is NULL or empty)"), "{}", run.stderr);
    assert_eq!(summary(dir.path())["input"]["rows_skipped"], 3);
    assert_eq!(summary(dir.path())["summary"]["customers"], 1);
}

/// The test Spark Connect server (`scripts/with-spark`), or `None` (the test is skipped) unless
/// `KANTA_REQUIRE_SPARK=1`, as in `scripts/test`, makes a missing one a failure.
fn spark() -> Option<String> {
    match std::env::var("KANTA_TEST_SPARK_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("KANTA_REQUIRE_SPARK").is_ok_and(|v| v == "1") => {
            panic!("KANTA_TEST_SPARK_URL is not set but KANTA_REQUIRE_SPARK=1 (run scripts/test)")
        }
        Err(_) => None,
    }
}

/// Runs `statements` in a Spark session.
fn spark_sql(url: &str, statements: &[String]) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut engine = kanta_warehouse::connect(url).await.expect("connect to Spark");
        for s in statements {
            let sql = kanta_warehouse::Sql { text: s.clone(), params: vec![] };
            engine.execute(&sql, "setting up the test").await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    });
}

/// A name for this test's tables: the tests share one Spark server.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

#[test]
fn cdnow_pushed_down_to_spark_matches_the_file_analysis() {
    let Some(url) = spark() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("cdnow.csv");
    std::fs::write(&csv, cdnow_csv()).expect("csv");
    let table = unique("cdnow");
    spark_sql(
        &url,
        &[format!(
            "CREATE TABLE {table} (customer_id STRING, date DATE, number_of_cds INT, dollar_value DECIMAL(12, 2)) \
             USING csv OPTIONS (path '{}', header 'true', dateFormat 'yyyyMMdd')",
            csv.display()
        )],
    );
    let (file, engine) = (dir.path().join("file"), dir.path().join("engine"));
    analyze_ok(&repo_data("CDNOW_master.txt"), &file, &[]);
    let into = unique("scores");
    pushdown(&url, &engine, &["--table", &table, "--into", &into]);
    assert_same_outputs(&file, &engine);
    let moved = &summary(&engine)["pushdown"];
    assert_eq!((moved["rows_aggregated"].as_u64(), moved["distinct_histories"].as_u64()), (Some(69_659), Some(11_102)));
}

#[test]
fn a_generated_shop_pushed_down_to_spark_matches_with_returns_weeks_and_as_of() {
    let Some(url) = spark() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let shop = shop_csv(dir.path());
    let table = unique("shop");
    spark_sql(
        &url,
        &[format!(
            "CREATE TABLE {table} (order_id STRING, customer_id STRING, order_date TIMESTAMP, product_id STRING, \
             category STRING, quantity INT, unit_price DECIMAL(10, 2), amount DECIMAL(12, 2)) \
             USING csv OPTIONS (path '{}', header 'true')",
            shop.display()
        )],
    );
    for (i, flags) in [&[][..], &["--keep-zero", "--as-of", "2024-06-30", "--period", "week"][..]].iter().enumerate() {
        let (file, engine) = (dir.path().join(format!("file{i}")), dir.path().join(format!("engine{i}")));
        analyze_ok(&shop, &file, flags);
        let into = unique("scores");
        let mut args = vec!["--table", &table, "--into", &into];
        args.extend_from_slice(flags);
        pushdown(&url, &engine, &args);
        assert_same_outputs(&file, &engine);
    }
}

#[test]
fn spark_names_are_quoted_and_its_errors_name_the_table_and_column() {
    let Some(url) = spark() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("odd.csv");
    let rows: String = std::iter::once("c,d,s\n".to_owned())
        .chain((0..60).map(|i| format!("c{},2024-0{}-1{},{}.50\n", i % 20, 1 + i % 5, i % 9, 10 + i)))
        .collect();
    std::fs::write(&csv, rows).expect("csv");
    let table = unique("odd");
    spark_sql(
        &url,
        &[format!(
            "CREATE TABLE {table} (`Customer ID` STRING, `when?` DATE, `sum``; DROP TABLE x` DECIMAL(10, 2), `text date` STRING) \
             USING csv OPTIONS (path '{}', header 'true')",
            csv.display()
        )],
    );
    let out = dir.path().to_str().expect("utf-8");
    // The odd table's columns by their names, with the time column given and `extra` flags.
    let odd = |time: &str, extra: &[&str]| {
        let mut args = vec!["analyze", "--engine", &url, "--table", &table, "--customer-col", "Customer ID"];
        args.extend_from_slice(&["--time-col", time, "--amount-col", "sum`; DROP TABLE x", "-o", out]);
        args.extend_from_slice(extra);
        kanta(&args)
    };
    let into = unique("scores");
    let run = odd("when?", &["--order-col", "none", "--model", "none", "--into", &into, "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(dir.path())["summary"]["customers"], 20);

    let run = kanta(&["analyze", "--engine", &url, "--table", "no_such_table", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("cannot read table `no_such_table` on {url}: ")), "{}", run.stderr);
    assert!(run.stderr.contains("TABLE_OR_VIEW_NOT_FOUND"), "{}", run.stderr);

    let run = odd("text date", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "column `text date` (order time) of table `{table}` on {url} is text; kanta needs a date or a timestamp there"
        )),
        "{}",
        run.stderr
    );

    let run = kanta(&["analyze", "--engine", "sc://127.0.0.1:1", "--table", "orders", "-o", out]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect to sc://127.0.0.1:1"), "{}", run.stderr);
}
