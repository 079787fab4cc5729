//! Load generator for `bench/ingest.sh` (run by hand, never in CI).
//!
//! Every mode produces the same deterministic orders (order `i`: id `o{i}`, customer
//! `c{(i·7919) mod C}`, one line), so the API run and the bare-insert reference write the same
//! rows:
//!
//! ```text
//! ingest_load post URL TOKEN ORDERS CUSTOMERS BATCH CONCURRENCY   # POST /v1/orders, prints orders/s
//! ingest_load sqlite-sql ORDERS CUSTOMERS > ref.sql                # one transaction for the sqlite3 CLI
//! ingest_load pg-csv ORDERS CUSTOMERS DIR                          # customers/orders/lines CSV for COPY
//! ```

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufWriter, Write};
use std::time::Instant;

const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

fn customer(i: u64, customers: u64) -> u64 {
    (i * 7919) % customers
}

fn amount_cents(i: u64) -> u64 {
    100 + (i * 37) % 9_000
}

fn order_json(i: u64, customers: u64) -> String {
    let cents = amount_cents(i);
    let time = chrono::DateTime::from_timestamp(T0 + i as i64 * 30, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        r#"{{"id":"o{i}","customer_id":"c{}","time":"{time}","amount":"{}.{:02}","currency":"EUR","lines":[{{"product":"p{}","category":"cat{}","quantity":1,"price":"{}.{:02}"}}]}}"#,
        customer(i, customers),
        cents / 100,
        cents % 100,
        i % 500,
        i % 20,
        cents / 100,
        cents % 100
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |k: usize| args[k].parse::<u64>().unwrap();
    match args.get(1).map(String::as_str) {
        Some("post") => post(&args[2], &args[3], num(4), num(5), num(6) as usize, num(7) as usize),
        Some("sqlite-sql") => sqlite_sql(num(2), num(3)),
        Some("pg-csv") => pg_csv(num(2), num(3), &args[4]),
        _ => eprintln!("usage: see the module docs"),
    }
}

fn post(url: &str, token: &str, orders: u64, customers: u64, batch: usize, concurrency: usize) {
    // Bodies are built before the clock starts: the load generator shares the machine's two
    // cores with the server and must not compete for them while it is measured.
    let bodies: Vec<String> = (0..orders)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| format!("[{}]", chunk.iter().map(|&i| order_json(i, customers)).collect::<Vec<_>>().join(",")))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let started = Instant::now();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, bodies) = (client.clone(), bodies.clone());
                let (url, token) = (format!("{url}/v1/orders"), token.to_string());
                tokio::spawn(async move {
                    loop {
                        let Some(body) = bodies.lock().unwrap().next() else { break };
                        let r = client.post(&url).bearer_auth(&token).body(body).send().await.unwrap();
                        assert!(r.status().is_success(), "{}", r.status());
                        r.bytes().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!("{secs:.3} s, {:.0} orders/s", orders as f64 / secs);
}

fn sqlite_sql(orders: u64, customers: u64) {
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nPRAGMA foreign_keys=ON;\nBEGIN;").unwrap();
    let now = 1_730_000_000_000_000i64;
    for start in (0..customers).step_by(500) {
        let rows: Vec<String> =
            (start..(start + 500).min(customers)).map(|c| format!("({},'c{c}',{now},{now})", c + 1)).collect();
        writeln!(out, "INSERT INTO customers (id, external_id, created_at, updated_at) VALUES {};", rows.join(","))
            .unwrap();
    }
    for start in (0..orders).step_by(500) {
        let range = start..(start + 500).min(orders);
        let rows: Vec<String> = range
            .clone()
            .map(|i| {
                format!(
                    "({},'o{i}',{},{},{},'EUR','completed','{:032x}')",
                    i + 1,
                    customer(i, customers) + 1,
                    (T0 + i as i64 * 30) * 1_000_000,
                    amount_cents(i) * 100,
                    i
                )
            })
            .collect();
        writeln!(
            out,
            "INSERT INTO orders (id, external_id, customer_id, time, amount, currency, status, lines_digest) VALUES {};",
            rows.join(",")
        )
        .unwrap();
        let lines: Vec<String> = range
            .map(|i| format!("({},0,'p{}','cat{}',10000,{})", i + 1, i % 500, i % 20, amount_cents(i) * 100))
            .collect();
        writeln!(
            out,
            "INSERT INTO order_lines (order_id, line_no, product, category, quantity, price) VALUES {};",
            lines.join(",")
        )
        .unwrap();
    }
    writeln!(out, "COMMIT;").unwrap();
}

fn pg_csv(orders: u64, customers: u64, dir: &str) {
    let now = 1_730_000_000_000_000i64;
    let mut c = BufWriter::new(std::fs::File::create(format!("{dir}/customers.csv")).unwrap());
    for i in 0..customers {
        writeln!(c, "c{i},{now},{now}").unwrap();
    }
    let mut o = BufWriter::new(std::fs::File::create(format!("{dir}/orders.csv")).unwrap());
    let mut l = BufWriter::new(std::fs::File::create(format!("{dir}/lines.csv")).unwrap());
    for i in 0..orders {
        // Identity columns start at 1 in a fresh database, in COPY order.
        writeln!(
            o,
            "o{i},{},{},{},EUR,completed,{:032x}",
            customer(i, customers) + 1,
            (T0 + i as i64 * 30) * 1_000_000,
            amount_cents(i) * 100,
            i
        )
        .unwrap();
        writeln!(l, "{},0,p{},cat{},10000,{}", i + 1, i % 500, i % 20, amount_cents(i) * 100).unwrap();
    }
}
