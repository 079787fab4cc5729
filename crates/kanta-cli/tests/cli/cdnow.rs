//! The real CDNOW data: reproduce the published calibration summary exactly.

use crate::support::{analyze_cdnow_sample, analyze_ok, customers, repo_data, summary};

/// Fader, Hardie & Lee's summary of the 2,357-customer sample (39-week calibration ending
/// 1997-09-30, weeks = days / 7, 2 decimals), as shipped with lifetimes 0.11.3.
#[test]
fn cdnow_sample_reproduces_the_published_x_tx_t_and_zbar_for_every_customer() {
    let out = tempfile::tempdir().unwrap();
    // The sample has no header; the published summary counts the eight $0.00 purchases, so --keep-zero.
    analyze_cdnow_sample(out.path(), &["--as-of", "1997-09-30", "--period", "week", "--keep-zero"]);
    let mine = customers(out.path());
    let mut reference = csv::Reader::from_path(repo_data("cdnow_customers_summary_with_transactions.csv")).unwrap();
    let mut checked = 0;
    for row in reference.records() {
        let row = row.unwrap();
        let id: u32 = row[0].parse().unwrap();
        // The sample writes ids zero-padded (0001); ids are kept exactly as given.
        let m = &mine[&format!("{id:04}")];
        assert_eq!(m["frequency"], row[1], "x of customer {id}");
        for (col, expected) in [("recency", &row[2]), ("T", &row[3]), ("monetary", &row[4])] {
            let value: f64 = m[col].parse().unwrap();
            let expected: f64 = expected.parse().unwrap();
            let rounded = (value * 100.0).round() / 100.0;
            // The file rounds float sums; at an exact half cent (22.345) either neighbour is right.
            let half_cent_tie =
                ((value * 1000.0).round() - value * 1000.0).abs() < 1e-6 && (value * 1000.0).round() % 10.0 == 5.0;
            assert!(
                (rounded - expected).abs() < 1e-9 || (half_cent_tie && (value - expected).abs() <= 0.005 + 1e-9),
                "{col} of customer {id}: kanta {value}, published {expected}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 2_357);
    assert_eq!(mine.len(), 2_357);
    // Customer 1 by hand: purchases on 1997-01-01, 01-18 and 08-02 (29.33, 29.73, 14.96).
    let c1 = &mine["0001"];
    assert_eq!(
        (c1["first_purchase"].as_str(), c1["last_purchase"].as_str(), c1["orders"].as_str()),
        ("1997-01-01", "1997-08-02", "3")
    );
    assert_eq!(c1["revenue"], "74.02");
    assert_eq!(c1["monetary"], "22.345");
}

#[test]
fn cdnow_master_reads_as_is_with_its_header_and_totals_match_the_data_readme() {
    let out = tempfile::tempdir().unwrap();
    let run = analyze_ok(&repo_data("CDNOW_master.txt"), out.path(), &["--keep-zero", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json, summary(out.path()));
    let s = &json["summary"];
    assert_eq!(s["customers"], 23_570);
    assert_eq!(s["orders"], 69_659);
    assert_eq!(s["revenue"].as_f64().unwrap(), 2_500_315.63);
    assert_eq!(s["as_of"], "1998-06-30");
    assert_eq!(json["input"]["format"], "whitespace-separated");
    assert_eq!(
        json["input"]["columns"],
        "customer = customer_id (detected), order = none (each row is an order), time = date (detected), amount = dollar_value (detected)"
    );
    // Every customer's first purchase is in Q1 1997: exactly three cohorts.
    let sizes: Vec<u64> = s["cohorts"]["sizes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(&sizes[..3].iter().sum::<u64>(), &23_570);
    assert!(sizes[3..].iter().all(|&n| n == 0));
    // Without --keep-zero, the 80 $0 orders are dropped and reported.
    let out2 = tempfile::tempdir().unwrap();
    analyze_ok(&repo_data("CDNOW_master.txt"), out2.path(), &[]);
    let s2 = summary(out2.path());
    assert_eq!(s2["summary"]["orders"], 69_579);
    assert_eq!(s2["summary"]["zero_amount_orders_dropped"], 80);
}
