//! Reading order lines with their product (`read_orders_with_lines`), for `kanta import orders`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use kanta_core::aggregate::Aggregator;
use kanta_core::money::Money;
use kanta_io::columns::ColumnSpec;
use kanta_io::{Input, ReadError, ReadOptions, ReadSummary, read_orders, read_orders_with_lines};

/// A line as handed out: order index, product, category, quantity, unit price.
type Got = (u32, String, Option<String>, f64, f64);

fn read_lines(path: &Path, options: &ReadOptions) -> (Result<ReadSummary, ReadError>, Aggregator, Vec<Got>) {
    let mut aggregator = Aggregator::new();
    let mut got = Vec::new();
    let mut keep = |order: u32, d: kanta_io::LineDetail<'_>| {
        got.push((
            order,
            d.product.to_owned(),
            d.category.map(str::to_owned),
            d.quantity.to_f64(),
            d.unit_price.to_f64(),
        ));
    };
    let result = read_orders_with_lines(&Input::Path(path.to_path_buf()), options, &mut aggregator, &(), &mut keep);
    (result, aggregator, got)
}

fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())).expect("write");
    path
}

fn got(order: u32, product: &str, category: Option<&str>, quantity: f64, price: f64) -> Got {
    (order, product.to_owned(), category.map(str::to_owned), quantity, price)
}

const SHOP: &str = "\
order_id,customer_id,order_date,product_id,category,quantity,unit_price,amount
A,c1,2024-01-05T10:00:00Z,P1,coffee,2,4.50,9.00
B,c2,2024-01-06T10:00:00Z,P2,,1,3.00,3.00
A,c1,2024-01-05T10:00:00Z, P3 ,mugs,1,7.25,7.25
R,c1,2024-02-01T10:00:00Z,P1,coffee,-1,4.50,-4.50
";

#[test]
fn each_line_reaches_its_order_even_when_the_orders_lines_are_not_adjacent() {
    let dir = tempfile::tempdir().expect("dir");
    let path = file(dir.path(), "shop.csv", SHOP);
    let (result, aggregator, lines) = read_lines(&path, &ReadOptions::default());
    let summary = result.expect("read");
    assert_eq!(
        lines,
        [
            got(0, "P1", Some("coffee"), 2.0, 4.5),
            got(1, "P2", None, 1.0, 3.0),
            got(0, "P3", Some("mugs"), 1.0, 7.25),
            // A return: the quantity is positive and the price carries the sign.
            got(2, "P1", Some("coffee"), 1.0, -4.5),
        ]
    );
    let mut orders = Vec::new();
    aggregator.for_each_order(|_, id, _, amount| orders.push((id.map(<[u8]>::to_vec), amount)));
    assert_eq!(
        orders,
        [
            (Some(b"A".to_vec()), Money::parse("16.25", false).expect("money")),
            (Some(b"B".to_vec()), Money::parse("3", false).expect("money")),
            (Some(b"R".to_vec()), Money::parse("-4.5", false).expect("money")),
        ]
    );
    assert_eq!(
        summary.columns.to_string(),
        "customer = customer_id (detected), order = order_id (detected), time = order_date (detected), \
         amount = amount (detected), product = product_id (detected), category = category (detected)"
    );
}

#[test]
fn the_analysis_read_of_the_same_file_sees_no_product_columns() {
    let dir = tempfile::tempdir().expect("dir");
    let path = file(dir.path(), "shop.csv", SHOP);
    let mut aggregator = Aggregator::new();
    let summary = read_orders(&Input::Path(path), &ReadOptions::default(), &mut aggregator, &()).expect("read");
    assert_eq!(summary.columns.lines, None);
    assert_eq!((aggregator.orders(), aggregator.lines()), (3, 4));
}

#[test]
fn quantity_times_unit_price_files_use_the_stock_code_as_product() {
    // The Online Retail layout (UCI): no amount column, amount = Quantity × UnitPrice.
    let dir = tempfile::tempdir().expect("dir");
    let path = file(
        dir.path(),
        "retail.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID\n\
         536365,85123A,WHITE HANGING HEART,6,2010-12-01T08:26:00,2.55,17850\n\
         C536379,85123A,WHITE HANGING HEART,-2,2010-12-01T09:41:00,2.55,17850\n",
    );
    let (result, _, lines) = read_lines(&path, &ReadOptions::default());
    result.expect("read");
    assert_eq!(lines, [got(0, "85123A", None, 6.0, 2.55), got(1, "85123A", None, 2.0, -2.55)]);
}

#[test]
fn without_quantity_and_price_columns_each_line_is_one_unit_of_its_amount() {
    let dir = tempfile::tempdir().expect("dir");
    // Whitespace-separated, like the CDNOW files, with a `sku` column.
    let path = file(dir.path(), "ws.txt", "customer date sku amount\nc1 2024-01-01 S9 12.5\nc1 2024-01-01 - 0\n");
    let (result, _, lines) = read_lines(&path, &ReadOptions::default());
    result.expect("read");
    // Without an order id each row is an order; the `-` product is a product like any other.
    assert_eq!(lines, [got(0, "S9", None, 1.0, 12.5), got(1, "-", None, 1.0, 0.0)]);
}

#[test]
fn a_file_without_a_product_column_reads_its_orders_and_no_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let path = file(dir.path(), "plain.csv", "customer,date,amount\na,2024-01-01,5\n");
    let (result, aggregator, lines) = read_lines(&path, &ReadOptions::default());
    assert_eq!(result.expect("read").columns.lines, None);
    assert_eq!((aggregator.orders(), lines.len()), (1, 0));
}

#[test]
fn named_product_columns_must_exist_and_win_over_detection() {
    let dir = tempfile::tempdir().expect("dir");
    let path = file(dir.path(), "shop.csv", SHOP);
    let named = |product: &str, category: Option<&str>| ReadOptions {
        columns: ColumnSpec {
            product: Some(product.to_owned()),
            category: category.map(str::to_owned),
            ..ColumnSpec::default()
        },
        ..ReadOptions::default()
    };
    let (result, _, _) = read_lines(&path, &named("item", None));
    let message = result.expect_err("unknown column").to_string();
    assert!(message.contains("there is no column `item` (given with --product-col)"), "{message}");
    // The category column used as the product, with no category.
    let (result, _, lines) = read_lines(&path, &named("category", Some("product_id")));
    result.expect("read");
    assert_eq!(lines[0], got(0, "coffee", Some("P1"), 2.0, 4.5));
}

#[test]
fn a_bad_quantity_names_its_column_and_a_skipped_row_keeps_no_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = file(
        dir.path(),
        "bad.csv",
        "order_id,customer_id,order_date,product_id,quantity,amount\n\
         A,c1,2024-01-05,P1,2,9\n\
         B,c1,2024-01-06,P2,two,3\n\
         C,c1,2024-01-07,P3,1,4\n",
    );
    let (result, _, _) = read_lines(&path, &ReadOptions::default());
    let message = result.expect_err("bad quantity").to_string();
    assert_eq!(message, format!("{}:3: column `quantity`: cannot parse `two` as a number", path.display()));
    let options = ReadOptions { max_errors: 1, ..ReadOptions::default() };
    let (result, aggregator, lines) = read_lines(&path, &options);
    assert_eq!(result.expect("read").skipped.len(), 1);
    // Order C is the second order the aggregator kept; its price is amount ÷ quantity.
    assert_eq!(lines, [got(0, "P1", None, 2.0, 4.5), got(1, "P3", None, 1.0, 4.0)]);
    assert_eq!(aggregator.orders(), 2);
}

#[test]
fn parquet_lines_equal_the_csv_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let csv = file(dir.path(), "shop.csv", SHOP);
    let parquet = dir.path().join("shop.parquet");
    let strings = |v: &[Option<&str>]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        ("order_id", strings(&[Some("A"), Some("B"), Some("A"), Some("R")])),
        ("customer_id", strings(&[Some("c1"), Some("c2"), Some("c1"), Some("c1")])),
        (
            "order_date",
            strings(&[
                Some("2024-01-05T10:00:00Z"),
                Some("2024-01-06T10:00:00Z"),
                Some("2024-01-05T10:00:00Z"),
                Some("2024-02-01T10:00:00Z"),
            ]),
        ),
        // Integers are ids too; a null category is no category.
        ("product_id", strings(&[Some("P1"), Some("P2"), Some(" P3 "), Some("P1")])),
        ("category", strings(&[Some("coffee"), None, Some("mugs"), Some("coffee")])),
        ("quantity", Arc::new(Int64Array::from(vec![2, 1, 1, -1])) as ArrayRef),
        ("unit_price", Arc::new(Float64Array::from(vec![4.5, 3.0, 7.25, 4.5])) as ArrayRef),
        ("amount", Arc::new(Float64Array::from(vec![9.0, 3.0, 7.25, -4.5])) as ArrayRef),
    ])
    .expect("batch");
    let out = std::fs::File::create(&parquet).expect("create");
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let (from_csv, _, csv_lines) = read_lines(&csv, &ReadOptions::default());
    let (from_parquet, _, parquet_lines) = read_lines(&parquet, &ReadOptions::default());
    from_csv.expect("csv");
    assert_eq!(
        from_parquet.expect("parquet").columns.lines,
        Some(kanta_io::columns::LineColumns { product: 3, category: Some(4), quantity: Some(5), unit_price: Some(6) })
    );
    assert_eq!(parquet_lines, csv_lines);
}

#[test]
fn a_parquet_product_column_of_the_wrong_type_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.parquet");
    let batch = RecordBatch::try_from_iter([
        ("customer_id", Arc::new(StringArray::from(vec!["c1"])) as ArrayRef),
        ("order_date", Arc::new(StringArray::from(vec!["2024-01-01"])) as ArrayRef),
        ("amount", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
        ("sku", Arc::new(Float64Array::from(vec![1.5])) as ArrayRef),
    ])
    .expect("batch");
    let out = std::fs::File::create(&path).expect("create");
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let (result, _, _) = read_lines(&path, &ReadOptions::default());
    let message = result.expect_err("float product").to_string();
    assert!(message.contains("`sku`") && message.contains("product"), "{message}");
}
