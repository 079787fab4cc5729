//! Input formats: delimiters, quoting, BOM, gzip, decimal commas, stdin and Parquet.

use std::io::Write;

use crate::support::{analyze_ok, customers, kanta, kanta_stdin, summary, write};

#[test]
fn semicolons_quotes_bom_and_decimal_commas_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}Kunde;Bestellung;Datum;Betrag\n\"00042\";\"A;1\";05.01.2024;\"1.234,50\"\n\"00042\";\"A;1\";05.01.2024;-4,50\n7;B2;06.01.2024;10\n";
    let file = write(dir.path(), "bestellungen.csv", text.as_bytes());
    let out = dir.path().join("out");
    analyze_ok(
        &file,
        &out,
        &[
            "--customer-col",
            "Kunde",
            "--order-col",
            "Bestellung",
            "--time-col",
            "Datum",
            "--amount-col",
            "Betrag",
            "--time-format",
            "%d.%m.%Y",
            "--decimal-comma",
        ],
    );
    let c = customers(&out);
    // Two lines of order "A;1" sum to one order; the id keeps its leading zeros.
    assert_eq!(c["00042"]["orders"], "1");
    assert_eq!(c["00042"]["revenue"], "1230.00");
    assert_eq!(c["7"]["revenue"], "10.00");
    assert_eq!(summary(&out)["input"]["format"], "csv (;)");
}

#[test]
fn gzip_tabs_and_stdin_give_the_same_result_as_plain_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "customer_id,order_id,created_at,total\na,1,2024-01-01T10:00:00Z,10\nb,2,2024-01-02T23:30:00-02:00,20\na,3,2024-02-01,5.5\n";
    let plain = write(dir.path(), "o.csv", csv.as_bytes());
    let tsv = write(dir.path(), "o.tsv", csv.replace(',', "\t").as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).unwrap();
    let gzip = write(dir.path(), "o.csv.gz", &gz.finish().unwrap());
    let reference = {
        let out = dir.path().join("plain");
        analyze_ok(&plain, &out, &[]);
        std::fs::read_to_string(out.join("customers.csv")).unwrap()
    };
    for (name, file) in [("tsv", &tsv), ("gzip", &gzip)] {
        let out = dir.path().join(name);
        analyze_ok(file, &out, &[]);
        assert_eq!(std::fs::read_to_string(out.join("customers.csv")).unwrap(), reference, "{name}");
    }
    let out = dir.path().join("stdin");
    let run = kanta_stdin(&["analyze", "-", "-o", out.to_str().unwrap(), "--json"], csv.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(out.join("customers.csv")).unwrap(), reference);
    // b's order at 23:30 −02:00 is 01:30 UTC on 2024-01-03.
    assert!(reference.contains("b,2024-01-03,2024-01-03,1,20.00,"), "{reference}");
}

#[test]
fn csv_and_parquet_of_the_same_generated_shop_give_identical_customer_tables() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("shop.csv");
    let pq = dir.path().join("shop.parquet");
    for file in [&csv, &pq] {
        let run = kanta(&["generate", "--customers", "3000", "--seed", "9", "--out", file.to_str().unwrap(), "-q"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    analyze_ok(&csv, &a, &[]);
    analyze_ok(&pq, &b, &[]);
    let table_a = std::fs::read_to_string(a.join("customers.csv")).unwrap();
    assert_eq!(table_a, std::fs::read_to_string(b.join("customers.csv")).unwrap());
    assert_eq!(table_a.lines().count(), 3_001);
    let s = summary(&b);
    assert_eq!(s["input"]["format"], "parquet");
    assert!(s["summary"]["returns"]["orders"].as_u64().unwrap() > 0);
    // Parquet output reads back with the same number of rows.
    let file = std::fs::File::open(b.join("customers.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 3_000);
}

#[test]
fn generate_is_reproducible_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.csv"), dir.path().join("b.csv"), dir.path().join("c.csv"));
    for (file, seed) in [(&a, "1"), (&b, "1"), (&c, "2")] {
        assert_eq!(
            kanta(&["generate", "--customers", "200", "--seed", seed, "-o", file.to_str().unwrap(), "-q"]).code,
            0
        );
    }
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    assert!(
        String::from_utf8(read(&a))
            .unwrap()
            .starts_with("order_id,customer_id,order_date,product_id,category,quantity,unit_price,amount\n")
    );
}
