//! The outputs people look at: the terminal table (snapshot) and the HTML report (in Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;

use expect_test::expect;

use crate::support::{analyze_ok, kanta, write};

/// A shop small enough to check by hand: a, b and c buy; d only returns.
const SHOP: &str = "\
order_id,customer_id,order_date,amount
1,a,2024-01-05,100
2,b,2024-01-20,30
3,a,2024-02-10,60
3,a,2024-02-10,-10
4,c,2024-03-01,20
5,a,2024-03-15,40
6,b,2024-03-16,0
7,d,2024-03-20,-15
8,a,2024-03-31,25
";

#[test]
fn the_terminal_summary_of_a_small_shop_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "shop.csv", SHOP.as_bytes());
    let run = kanta(&[
        "analyze",
        file.to_str().unwrap(),
        "-o",
        dir.path().join("out").to_str().unwrap(),
        "--currency",
        "EUR",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout.replace(file.to_str().unwrap(), "shop.csv").replace(dir.path().to_str().unwrap(), "DIR");
    // Checked by hand: a has 4 orders (100, 60 − 10, 40, 25 = 215), b's 0-amount order is
    // dropped, d only returned. Gini of (20, 30, 215): 2·725/(3·265) − 4/3 = 0.491. Gaps of a:
    // 36, 34, 16 days, so the lapse threshold is max(30, 36) and b (71 days) is lapsing.
    // Scores: days since last (0, 71, 30) give R = 4, 1, 2; orders F = 4, 1, 1; revenue M = 4, 2, 1.
    expect![[r#"
        kanta retention summary — as of 2024-03-31
          input: shop.csv (csv (,), 9 rows)
          columns: customer = customer_id (detected), order = order_id (detected), time = order_date (detected), amount = amount (detected)

          Overview
          ───────────────────  ────────────────────────────────────
          Customers                                               3
          Orders                                                  6
          Revenue                                        EUR 265.00
          One-time buyers                                     66.7%
          Average order value                             EUR 44.17
          Returns              1 order, EUR 15.00 (5.7% of revenue)

        Repeat-purchase ladder (of customers with k orders, the share who made another)
          orders  customers  made next   share
          ──────  ─────────  ─────────  ──────
          1 → 2           3          1   33.3%
          2 → 3           1          1  100.0%
          3 → 4           1          1  100.0%
          4 → 5           1          0    0.0%
          5 → 6           0          0    0.0%

        Revenue concentration
          top 1%  top 10%  top 20%   Gini  AOV top 10% / rest
          ──────  ───────  ───────  ─────  ──────────────────
           81.1%    81.1%    81.1%  0.491               2.15×

        Time between purchases: median 36 days from 1st to 2nd purchase (1 customer came back), 34 days between any two

        Revenue at risk (lapse threshold 36 days): lapsing customers (1) spent EUR 30.00 in the last 12 months; lost customers (0) spent EUR 0.00
           kept  customers  revenue kept (12 months)
          ─────  ─────────  ────────────────────────
           5.0%          0                  EUR 1.50
          10.0%          0                  EUR 3.00
          20.0%          0                  EUR 6.00
          30.0%          0                  EUR 9.00
          50.0%          1                 EUR 15.00

        Lifecycle stages
          stage     customers  share     revenue  of revenue
          ────────  ─────────  ─────  ──────────  ──────────
          new               1  33.3%   EUR 20.00        7.5%
          repeat            0   0.0%    EUR 0.00        0.0%
          loyal             1  33.3%  EUR 215.00       81.1%
          slipping          0   0.0%    EUR 0.00        0.0%
          lapsing           1  33.3%   EUR 30.00       11.3%
          lost              0   0.0%    EUR 0.00        0.0%

        RFM segments
          segment      customers  share     revenue  of revenue
          ───────────  ─────────  ─────  ──────────  ──────────
          Loyal                1  33.3%  EUR 215.00       81.1%
          Hibernating          1  33.3%   EUR 20.00        7.5%
          Lost                 1  33.3%   EUR 30.00       11.3%

        Customer models: too few customers for the customer models (3 customers, 1 with a repeat purchase; they need at least 50 and 10)

        wrote DIR/out/{customers.csv, customers.parquet, summary.json, report.html}
    "#]]
    .assert_eq(&text);
}

/// Finds Chromium; `KANTA_REQUIRE_BROWSER=1` (set by scripts/test) turns a missing browser into a failure.
pub(crate) fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let out = Command::new("which").arg(name).output().ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    if found.is_none() {
        assert!(
            std::env::var("KANTA_REQUIRE_BROWSER").is_err(),
            "KANTA_REQUIRE_BROWSER is set but no Chromium was found"
        );
        eprintln!("skipping the browser check: no Chromium (scripts/test installs it)");
    }
    found
}

/// Loads `page` in headless Chromium; returns the DOM after load and the console messages.
pub(crate) fn load(browser: &Path, page: &Path, profile: &Path) -> (String, Vec<String>) {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    let console = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&output.stdout).into_owned(), console)
}

#[test]
fn the_html_report_loads_in_chromium_without_console_errors_and_shows_every_chart() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop.csv");
    assert_eq!(kanta(&["generate", "--customers", "2000", "-o", shop.to_str().unwrap(), "-q"]).code, 0);
    let out = dir.path().join("out");
    analyze_ok(&shop, &out, &["--currency", "EUR"]);

    // The check itself must be able to fail: a page with a script error is caught.
    let broken = write(
        dir.path(),
        "broken.html",
        b"<html><body><script>console.error('boom'); undefinedFunction();</script></body></html>",
    );
    let (_, console) = load(&browser, &broken, &dir.path().join("profile-broken"));
    assert!(console.iter().any(|l| l.contains("boom")), "console capture does not work: {console:?}");

    let (dom, console) = load(&browser, &out.join("report.html"), &dir.path().join("profile"));
    assert!(console.is_empty(), "console messages: {console:?}");
    let charts = dom.matches("class=\"chart\"").count();
    // Six business charts, and P(alive) and CLV distributions from the customer models.
    assert_eq!(charts, 8, "expected 8 charts in the report");
    assert!(!dom.contains("chart-error"), "a chart failed to draw");
    for section in [
        "id=\"ladder\"",
        "id=\"concentration\"",
        "id=\"cohorts\"",
        "id=\"time-between\"",
        "id=\"at-risk\"",
        "id=\"models\"",
        "id=\"segments\"",
    ] {
        assert!(dom.contains(section), "missing section {section}");
    }
    // No external asset: nothing is loaded over the network.
    assert!(!dom.contains("src=\"http") && !dom.contains("href=\"http"));
}
