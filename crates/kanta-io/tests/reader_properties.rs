//! Property tests: no input makes the reader panic, and skipped rows never lose accepted ones.

use std::io::Write;

use kanta_core::aggregate::Aggregator;
use kanta_io::{Input, ReadOptions, read_orders, read_orders_with_lines};
use proptest::prelude::*;

/// Fragments that steer random files into the reader's interesting states.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"customer_id,order_id,order_date,amount\n".to_vec()),
        Just(b"customer_id;date;total\n".to_vec()),
        Just(b"order_id,customer_id,order_date,sku,category,quantity,unit_price,amount\n".to_vec()),
        Just(b"o1,c1,2024-01-01,P\xff,,0,1e999,5\n".to_vec()),
        Just(b"o2,c1,2024-01-01,P2,mugs,-3,2.5,-7.5\n".to_vec()),
        Just(b" customer_id  date  dollar_value\n".to_vec()),
        Just(b"c1,o1,2024-01-01,10.50\n".to_vec()),
        Just(b"\"c,2\",\"o\"\"2\",2024-02-30T10:00:00Z,-3\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\x1f\x8b".to_vec()),
        Just(b"PAR1".to_vec()),
        Just(b",,,\n".to_vec()),
        Just(b"\n\r\n".to_vec()),
        Just(b"\"unterminated".to_vec()),
        Just(b"1e999,9999999999999999999999,(5),\xff\xfe\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[a-z0-9 ,;\t.:\\-+TZ\"]{0,40}\n".prop_map(String::into_bytes),
    ]
}

fn read(bytes: &[u8], max_errors: u64) -> (Result<kanta_io::ReadSummary, kanta_io::ReadError>, Aggregator) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(bytes).expect("write");
    let mut agg = Aggregator::new();
    let options = ReadOptions { max_errors, ..ReadOptions::default() };
    let result = read_orders(&Input::Path(file.path().to_path_buf()), &options, &mut agg, &());
    (result, agg)
}

/// Reads with lines kept: the result, the aggregator and the order index of every line.
fn read_with_lines(
    bytes: &[u8],
    max_errors: u64,
) -> (Result<kanta_io::ReadSummary, kanta_io::ReadError>, Aggregator, Vec<u32>) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(bytes).expect("write");
    let mut agg = Aggregator::new();
    let mut orders = Vec::new();
    let options = ReadOptions { max_errors, ..ReadOptions::default() };
    let result =
        read_orders_with_lines(&Input::Path(file.path().to_path_buf()), &options, &mut agg, &(), &mut |order, _| {
            orders.push(order)
        });
    (result, agg, orders)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn keeping_lines_never_panics_and_every_line_names_a_kept_order(
        parts in proptest::collection::vec(fragment(), 0..12),
        max_errors in 0u64..5,
    ) {
        let bytes: Vec<u8> = parts.concat();
        let (result, agg, orders) = read_with_lines(&bytes, max_errors);
        prop_assert!(orders.len() as u64 <= agg.lines());
        prop_assert!(orders.iter().all(|&o| (o as usize) < agg.orders()));
        if let Ok(summary) = result {
            prop_assert_eq!(summary.rows, agg.lines() + summary.skipped.len() as u64);
        }
    }

    #[test]
    fn no_input_makes_the_reader_panic(parts in proptest::collection::vec(fragment(), 0..12), max_errors in 0u64..5) {
        let bytes: Vec<u8> = parts.concat();
        let (result, agg) = read(&bytes, max_errors);
        if let Ok(summary) = result {
            // Every data row was either accepted or listed as skipped.
            prop_assert_eq!(summary.rows, agg.lines() + summary.skipped.len() as u64);
            prop_assert!(summary.skipped.len() as u64 <= max_errors);
        }
    }

    #[test]
    fn valid_rows_are_all_accepted_whatever_the_bad_rows_between_them(
        good in proptest::collection::vec((1u32..50, 1u32..28, 0i64..1_000_000), 1..30),
        bad in proptest::collection::vec(0usize..30, 0..5),
    ) {
        let mut text = String::from("customer_id,order_date,amount\n");
        let mut bad_count = 0u64;
        for (i, (c, d, cents)) in good.iter().enumerate() {
            if bad.contains(&i) {
                text.push_str("c1,not-a-date,1\n");
                bad_count += 1;
            }
            text.push_str(&format!("c{c},2024-01-{d:02},{}.{:02}\n", cents / 100, cents % 100));
        }
        let (result, agg) = read(text.as_bytes(), bad_count);
        let summary = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(agg.lines(), good.len() as u64);
        prop_assert_eq!(summary.skipped.len() as u64, bad_count);
    }
}

/// An order as owned values: customer id, order id, time, amount in 1/10,000.
type Owned = (Vec<u8>, Option<Vec<u8>>, i64, i64);

/// Every order of `agg` as owned values, in first-seen order.
fn orders(agg: &Aggregator) -> Vec<Owned> {
    let mut all = Vec::new();
    agg.for_each_order(|c, o, t, a| all.push((c.to_vec(), o.map(<[u8]>::to_vec), t.0, a.raw())));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A file is read with deferred order ids (and read again, indexed, when an order id comes
    /// with two customers); reading with lines kept always uses the indexed aggregator. Both
    /// must accept, merge, skip and report exactly the same, whatever the order of the lines.
    #[test]
    fn deferred_and_indexed_order_ids_read_a_file_the_same(
        rows in proptest::collection::vec((0u8..4, 0u8..6, 1u8..28, -3i64..20, proptest::bool::weighted(0.05)), 1..40),
        max_errors in 0u64..4,
    ) {
        let mut text = String::from("order_id,customer_id,order_date,sku,amount\n");
        for (c, o, d, amount, bad) in &rows {
            let date = if *bad { "2024-13-01".to_owned() } else { format!("2024-01-{d:02}") };
            text.push_str(&format!("o{o},c{c},{date},p,{amount}\n"));
        }
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        let input = Input::Path(file.path().to_path_buf());
        let options = ReadOptions { max_errors, ..ReadOptions::default() };
        let (mut agg, mut indexed_agg) = (Aggregator::new(), Aggregator::new());
        let deferred = read_orders(&input, &options, &mut agg, &());
        let indexed = read_orders_with_lines(&input, &options, &mut indexed_agg, &(), &mut |_, _| ());
        match (deferred, indexed) {
            (Ok(d), Ok(i)) => {
                prop_assert_eq!(d.rows, i.rows);
                let text = |s: &kanta_io::ReadSummary| s.skipped.iter().map(|e| e.to_string()).collect::<Vec<_>>();
                prop_assert_eq!(text(&d), text(&i));
                prop_assert_eq!(orders(&agg), orders(&indexed_agg));
                prop_assert_eq!(agg.lines(), indexed_agg.lines());
            }
            (Err(d), Err(i)) => prop_assert_eq!(d.to_string(), i.to_string()),
            (d, i) => prop_assert!(false, "deferred {:?} but indexed {:?}", d.map(|s| s.rows), i.map(|s| s.rows)),
        }
    }
}

/// An order id that comes back later under another customer is reported on its own line, as
/// the indexed read would (the deferred read finds it only at the end and reads again); one that
/// comes back under the same customer is merged into its order.
#[test]
fn an_order_id_coming_back_later_is_merged_or_reported_on_its_line() {
    let mut text = String::from("order_id,customer_id,order_date,amount\n");
    for i in 0..20_000u32 {
        text.push_str(&format!("o{i},c{},2024-01-01,1.5\n", i % 97));
    }
    // Line 20,002 repeats o5 of c5; line 20,003 names o7 (of c7) with another customer.
    let merged = format!("{text}o5,c5,2023-12-31,2\n");
    let (ok, agg) = read(merged.as_bytes(), 0);
    assert_eq!(ok.unwrap().rows, 20_001);
    assert_eq!((agg.orders(), agg.lines()), (20_000, 20_001));
    let fifth = &orders(&agg)[5];
    assert_eq!((fifth.0.as_slice(), fifth.2, fifth.3), (&b"c5"[..], 1_704_067_200 - 86_400, 35_000));

    let conflict = format!("{merged}o7,other,2024-01-02,1\no8,c8,2024-01-02,1\n");
    let err = read(conflict.as_bytes(), 0).0.unwrap_err().to_string();
    assert!(err.contains(":20003: order `o7` belongs to customer `c7` but this line names customer `other`"), "{err}");
    let (ok, agg) = read(conflict.as_bytes(), 1);
    let summary = ok.unwrap();
    assert_eq!(summary.skipped.len(), 1);
    assert!(summary.skipped[0].to_string().contains(":20003: order `o7`"), "{}", summary.skipped[0]);
    assert_eq!((agg.orders(), agg.lines(), agg.customers()), (20_000, 20_002, 97));
}

/// Rows cross the reader thread in batches of 8,192; errors must still come in file order and
/// stop the read where the budget runs out, whatever batch they are in.
#[test]
fn errors_keep_file_order_across_the_reader_thread() {
    let mut text = String::from("customer_id,order_id,order_date,amount\n");
    for i in 0..30_000u32 {
        match i {
            9_000 | 17_000 => text.push_str("c1,o-bad,2024-13-01,1\n"),
            25_000 => text.push_str(&format!("other,o{},2024-01-01,1\n", i - 1)),
            _ => text.push_str(&format!("c{},o{i},2024-01-01,1.5\n", i % 97)),
        }
    }
    let (result, agg) = read(text.as_bytes(), 2);
    let err = result.unwrap_err().to_string();
    // Line numbers count the header: row i is on line i + 2.
    assert!(
        err.contains(":25002: order `o24999` belongs to customer `c70` but this line names customer `other`"),
        "{err}"
    );
    assert!(err.contains("more than --max-errors 2 bad rows"), "{err}");
    assert!(agg.lines() >= 24_997, "{}", agg.lines());

    let (ok, agg) = read(text.as_bytes(), 3);
    let summary = ok.unwrap();
    assert_eq!(summary.rows, 30_000);
    assert_eq!(agg.lines(), 29_997);
    let lines: Vec<String> = summary.skipped.iter().map(|e| e.to_string()).collect();
    assert!(lines[0].contains(":9002: column `order_date`"), "{lines:?}");
    assert!(lines[1].contains(":17002: column `order_date`"), "{lines:?}");
    assert!(lines[2].contains(":25002: order `o24999`"), "{lines:?}");
}

/// Progress comes from the parsing thread every 65,536 rows, then once with the total.
#[test]
fn progress_is_reported_while_reading_and_at_the_end() {
    struct Recorder(std::sync::Mutex<Vec<(u64, u64)>>);
    impl kanta_io::Progress for Recorder {
        fn update(&self, bytes: u64, rows: u64) {
            self.0.lock().unwrap().push((bytes, rows));
        }
    }
    let mut text = String::from("customer_id,order_date,amount\n");
    for i in 0..70_000u32 {
        text.push_str(&format!("c{},2024-01-01,1\n", i % 50));
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let recorder = Recorder(std::sync::Mutex::new(Vec::new()));
    let mut agg = Aggregator::new();
    read_orders(&Input::Path(file.path().to_path_buf()), &ReadOptions::default(), &mut agg, &recorder).unwrap();
    let updates = recorder.0.into_inner().unwrap();
    let rows: Vec<u64> = updates.iter().map(|&(_, rows)| rows).collect();
    assert_eq!(rows, [65_536, 70_000]);
    assert_eq!(updates[1].0, text.len() as u64);
    assert!(updates[0].0 > 0 && updates[0].0 <= updates[1].0);
}

/// A file whose order ids turn out to name two customers is read again (see `read_orders`):
/// progress says so once and counts from zero again; a file without such an id is read once.
#[test]
fn progress_says_when_the_file_is_read_again() {
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<Option<u64>>>);
    impl kanta_io::Progress for Recorder {
        fn update(&self, _bytes: u64, rows: u64) {
            self.0.lock().unwrap().push(Some(rows));
        }
        fn rereading(&self) {
            self.0.lock().unwrap().push(None);
        }
    }
    let read = |text: &str| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let recorder = Recorder::default();
        let options = ReadOptions { max_errors: 1, ..ReadOptions::default() };
        let mut agg = Aggregator::new();
        read_orders(&Input::Path(file.path().to_path_buf()), &options, &mut agg, &recorder).unwrap();
        recorder.0.into_inner().unwrap()
    };
    let mut text = String::from("customer_id,order_id,order_date,amount\n");
    for i in 0..70_000u32 {
        text.push_str(&format!("c{},o{i},2024-01-01,1\n", i % 50));
    }
    assert_eq!(read(&text), [Some(65_536), Some(70_000)]);
    // o3 belongs to c3; a later line names it with another customer and is skipped.
    text.push_str("other,o3,2024-01-02,1\n");
    assert_eq!(read(&text), [Some(65_536), Some(70_001), None, Some(65_536), Some(70_001)]);
}
