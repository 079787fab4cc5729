//! Bad input: every message names the file, line, column and value, and the exit code is 2.

use crate::support::{customers, kanta, summary, write};

#[track_caller]
fn fails_with(args: &[&str], expected: &str) {
    let run = kanta(args);
    assert_eq!(run.code, 2, "kanta {args:?} should exit 2; stderr:\n{}", run.stderr);
    assert!(run.stderr.contains(expected), "kanta {args:?}: expected `{expected}` in:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn each_kind_of_bad_input_gets_a_message_naming_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let p = |name: &str, content: &str| write(d, name, content.as_bytes()).to_str().unwrap().to_owned();

    fails_with(&["analyze", &d.join("nope.csv").to_string_lossy(), "-o", o], "nope.csv: cannot open: No such file");
    let run = kanta(&["analyze", &d.join("nope.csv").to_string_lossy(), "-o", o]);
    assert_eq!(run.stderr.matches("No such file").count(), 1, "the cause is said once:\n{}", run.stderr);
    // Regression (issue 16): random bytes were printed back as "column names".
    let noise: Vec<u8> = (0u32..4_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let binary = write(d, "noise.bin", &noise).to_str().unwrap().to_owned();
    fails_with(&["analyze", &binary, "-o", o], "noise.bin: not a text or Parquet file");
    let run = kanta(&["analyze", &binary, "-o", o]);
    assert_eq!(run.stderr.lines().count(), 1, "one line, no bytes echoed:\n{}", run.stderr);
    let empty = p("empty.csv", "");
    fails_with(&["analyze", &empty, "-o", o], &format!("{empty}: the file is empty"));
    let header_only = p("header.csv", "customer_id,order_date,amount\n");
    fails_with(&["analyze", &header_only, "-o", o], "header.csv: the file has a header line but no rows");
    let no_columns = p("cols.csv", "a,b,c\n1,2,3\n");
    fails_with(
        &["analyze", &no_columns, "-o", o],
        "cols.csv: no customer id column found (looked for customerid, customer",
    );
    let bad_amount = p("amount.csv", "customer_id,order_date,amount\nc1,2024-01-01,10\nc2,2024-01-02,12.5x\n");
    fails_with(&["analyze", &bad_amount, "-o", o], "amount.csv:3: column `amount`: cannot parse `12.5x` as a number");
    let bad_date = p("date.csv", "customer_id,order_date,amount\nc1,2024-02-30,10\n");
    fails_with(
        &["analyze", &bad_date, "-o", o],
        "date.csv:2: column `order_date`: cannot parse `2024-02-30` as a date or datetime",
    );
    let empty_id = p("id.csv", "customer_id,order_date,amount\nc1,2024-01-01,10\n\"\",2024-01-01,10\n");
    fails_with(&["analyze", &empty_id, "-o", o], "id.csv:3: column `customer_id`: the customer id is empty");
    let short_row = p("short.csv", "customer_id,order_date,amount\nc1,2024-01-01\n");
    fails_with(
        &["analyze", &short_row, "-o", o],
        "short.csv:2: column `amount`: the row has 2 fields, so it has no field 3",
    );
    let two_customers = p("two.csv", "order_id,customer_id,order_date,amount\no1,a,2024-01-01,1\no1,b,2024-01-01,1\n");
    fails_with(
        &["analyze", &two_customers, "-o", o],
        "two.csv:3: order `o1` belongs to customer `a` but this line names customer `b`",
    );
    let looks_like_data = p("data.csv", "c1,2024-01-01,10.5,3\n");
    fails_with(&["analyze", &looks_like_data, "-o", o], "data.csv:1: the first line looks like data");
    fails_with(
        &["analyze", &bad_amount, "-o", o, "--customer-col", "client"],
        "there is no column `client` (given with --customer-col)",
    );
    fails_with(&["analyze", &bad_amount, "-o", o, "--as-of", "yesterday"], "--as-of `yesterday` is not a date");
    fails_with(&["analyze", &bad_amount, "-o", o, "--delimiter", "::"], "--delimiter `::` must be one ASCII character");
    let future = p("future.csv", "customer_id,order_date,amount\nc1,2024-01-01,10\n");
    fails_with(&["analyze", &future, "-o", o, "--as-of", "2023-01-01"], "no purchase on or before 2023-01-01");
    let gz = write(d, "broken.csv.gz", b"\x1f\x8bgarbage");
    fails_with(&["analyze", gz.to_str().unwrap(), "-o", o], "broken.csv.gz: read error");
    let dir_input = d.to_str().unwrap();
    fails_with(&["analyze", dir_input, "-o", o], "cannot open: is a directory");
}

#[test]
fn max_errors_skips_and_lists_bad_rows_and_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "orders.csv",
        b"customer_id,order_date,amount\nc1,2024-01-01,10\nc1,not a date,5\nc2,2024-01-03,x\nc2,2024-01-04,7.25\n",
    );
    let out = dir.path().join("out");
    let run = kanta(&["analyze", file.to_str().unwrap(), "-o", out.to_str().unwrap(), "--max-errors", "2", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("skipped: "), "{}", run.stderr);
    assert!(run.stderr.contains("orders.csv:3: column `order_date`: cannot parse `not a date`"), "{}", run.stderr);
    assert!(run.stderr.contains("orders.csv:4: column `amount`: cannot parse `x` as a number"), "{}", run.stderr);
    let s = summary(&out);
    assert_eq!(s["input"]["rows"], 4);
    assert_eq!(s["input"]["rows_skipped"], 2);
    assert_eq!(s["summary"]["orders"], 2);
    let c = customers(&out);
    assert_eq!(c["c1"]["revenue"], "10.00");
    assert_eq!(c["c2"]["revenue"], "7.25");

    // One error over the budget stops the run with exit code 2 and says so.
    let run = kanta(&["analyze", file.to_str().unwrap(), "-o", out.to_str().unwrap(), "--max-errors", "1", "-q"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("orders.csv:4: column `amount`"), "{}", run.stderr);
    assert!(run.stderr.contains("more than --max-errors 1 bad rows"), "{}", run.stderr);
}

#[test]
fn parquet_columns_of_the_wrong_type_are_named_with_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("orders.parquet");
    let generated = kanta(&["generate", "--customers", "50", "--out", pq.to_str().unwrap(), "-q"]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    // `category` is a string: fine as an id, but not as a time or an amount.
    fails_with(
        &["analyze", pq.to_str().unwrap(), "-o", dir.path().join("o").to_str().unwrap(), "--time-col", "quantity"],
        "orders.parquet: column `quantity` has Parquet/Arrow type Int32, but the order time must be a timestamp, a date or a string",
    );
    fails_with(
        &["analyze", pq.to_str().unwrap(), "-o", dir.path().join("o").to_str().unwrap(), "--amount-col", "category"],
        "orders.parquet: row 1: column `category`: cannot parse `",
    );
    let truncated = write(dir.path(), "cut.parquet", &std::fs::read(&pq).unwrap()[..200]);
    fails_with(
        &["analyze", truncated.to_str().unwrap(), "-o", dir.path().join("o").to_str().unwrap()],
        "cut.parquet: invalid Parquet file",
    );
}

/// Regression (issue 16): with the server down, `kanta serve --db postgres://…` printed nothing
/// for 30 s and then "pool timed out while waiting for an open connection".
#[test]
fn an_unreachable_database_is_named_at_once_retried_and_given_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "kanta.toml", b"[database]\nconnect_timeout = \"2s\"\n");
    let config = config.to_str().unwrap();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://kanta:hunter2@127.0.0.1:1/kanta";
    for command in [&["score"][..], &["serve", "--listen", "127.0.0.1:0"], &["token", "list"]] {
        let mut args = command.to_vec();
        args.extend(["--db", url, "--config", config]);
        let started = std::time::Instant::now();
        let run = kanta(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "bounded by connect_timeout");
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("kanta: cannot reach the database at 127.0.0.1:1: "), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("trying again in 1.0 s (attempt 2)"), "{}", run.stderr);
        assert!(
            run.stderr.contains("error: giving up on postgres://kanta:***@127.0.0.1:1/kanta after 3 attempts"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
}
