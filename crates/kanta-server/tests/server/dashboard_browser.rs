//! The dashboard in a real browser: `tests/browser/dashboard.py` drives the installed Chromium
//! with Playwright (both installed by `scripts/install-test-deps`) against a server holding a
//! small scored shop. `KANTA_REQUIRE_BROWSER=1` (set by `scripts/test`) turns missing tools
//! into a failure instead of a skip. Screenshots of every page at 1280 and 390 px are left in
//! `target/tmp/dashboard-screenshots/{sqlite,postgres}/`, whose path the test prints. It runs on
//! both backends.

use std::path::{Path, PathBuf};
use std::process::Command;

use kanta_server::testing::TestApp;
use reqwest::StatusCode;
use serde_json::json;

use crate::dashboard::{api_json, api_status, post_json, post_status};

const DAY: i64 = 86_400_000_000;

/// The repository's root (the test tools live in its `target/test-tools`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium, Playwright's Python and axe-core, or `None` (a skip) when one is missing and
/// browsers are not required.
fn tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser"].iter().find_map(|name| {
        let out = Command::new("which").arg(name).output().ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    let python = root().join("target/test-tools/venv/bin/python");
    let playwright = Command::new(&python).args(["-c", "import playwright"]).status().is_ok_and(|s| s.success());
    let axe = root().join("target/test-tools/axe-core/axe.min.js");
    match chromium {
        Some(chromium) if playwright && axe.exists() => Some((chromium, python, axe)),
        _ => {
            assert!(
                std::env::var("KANTA_REQUIRE_BROWSER").is_err(),
                "KANTA_REQUIRE_BROWSER is set but Chromium, Playwright or axe-core is missing: run scripts/install-test-deps"
            );
            eprintln!("skipping the browser suite: run scripts/install-test-deps");
            None
        }
    }
}

/// 400 customers who buy as the buy-till-you-die models assume (each at a rate of their own,
/// each purchase possibly their last; first purchases over the last two years), so a scoring
/// run fits a model and every page has real numbers; a saved segment, a journey, a customer
/// named with an XSS payload and one to erase; then a scoring run.
async fn fill(app: &TestApp) {
    let now = kanta_domain::Clock::now(app.clock.as_ref()).micros();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut customers = Vec::new();
    let mut orders = Vec::new();
    let mut feedback = Vec::new();
    for c in 0..400 {
        let id = format!("c{c:03}");
        customers.push(json!({"id": id, "name": format!("Customer {c}"), "email": format!("c{c}@example.org")}));
        // First purchase 1–730 days ago; then gaps of 5–120 days; after each purchase a
        // 15–45 % chance that it was the last.
        let mut ago = 1 + i64::try_from(next(730)).expect("small");
        let mean_gap = 5 + i64::try_from(next(115)).expect("small");
        let drop = 15 + next(31);
        let mut last = ago;
        for k in 0.. {
            let time = kanta_store::rfc3339(now - ago * DAY + 3_600_000_000);
            let amount = format!("{}.{:02}", 10 + next(150), next(100));
            orders.push(json!({"id": format!("o{c}-{k}"), "customer_id": id, "time": time, "amount": amount, "currency": "EUR"}));
            last = ago;
            let gap = 1 + i64::try_from(next(u64::try_from(2 * mean_gap).expect("positive"))).expect("small");
            if next(100) < drop || ago - gap < 1 {
                break;
            }
            ago -= gap;
        }
        if c % 3 == 0 {
            let time = kanta_store::rfc3339(now - (last - 1).max(0) * DAY);
            let nps = next(11);
            feedback.push(json!({"id": format!("f{c}"), "customer_id": id, "time": time, "nps": nps, "csat": 1 + nps / 3,
                "text": if nps < 5 { "The parcel came late <again>" } else { "Lovely" }, "topics": [if nps < 5 { "delivery" } else { "product" }]}));
        }
    }
    customers.push(json!({"id": "xss-1", "name": HOSTILE, "email": "xss@example.org"}));
    customers.push(json!({"id": "erase-me", "name": "Erase Me", "email": "erase@example.org"}));
    post_json(app, "/v1/customers", serde_json::Value::Array(customers)).await;
    post_json(app, "/v1/orders", serde_json::Value::Array(orders)).await;
    post_json(app, "/v1/feedback", serde_json::Value::Array(feedback)).await;
    kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), now).await.expect("scoring");
    let segment = json!({"name": "valuable & slipping", "expression": "p_alive < 0.6 and orders >= 2"});
    post_status(app, "/v1/segments", segment, StatusCode::CREATED).await;
    post_status(
        app,
        "/v1/journeys",
        json!({"name": "win-back", "trigger": {"stage_becomes": "lost"}, "holdout": "10%",
        "goal": {"event": "order.created", "within": "30d", "exit": true},
        "steps": [
            {"id": "offer", "send_email": {"subject": "We saved you 10%", "html": "<p>Come back</p>"}},
            {"wait": "14d"},
            {"branch": {"if": "orders >= 2", "then": "exit",
                "else": [{"send_email": {"subject": "Last chance", "html": "<p>20% off</p>"}}]}}
        ]}),
        StatusCode::CREATED,
    )
    .await;
}

const HOSTILE: &str = "<script>alert('name')</script><img src=x onerror=alert(1)> \"quoted\" \u{202e}reversed";

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
    every_page_works_in_chromium_at_both_widths_without_errors_or_serious_accessibility_violations,
);

async fn every_page_works_in_chromium_at_both_widths_without_errors_or_serious_accessibility_violations(
    db: kanta_store::testing::TestDb,
) {
    let Some((chromium, python, axe)) = tools() else { return };
    let backend = if db.url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    fill(&app).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots").join(backend);
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    eprintln!("dashboard screenshots: {}", shots.display());
    let pages = json!([
        ["login", "/login"],
        ["overview", "/"],
        ["customers", "/customers"],
        ["customers-filtered", "/customers?stage=lapsing&risk=medium"],
        ["customers-segment", "/customers?segment=1"],
        ["customers-search", "/customers?q=c01"],
        ["customers-by-value", "/customers?sort=value"],
        ["customer", "/customers/c007"],
        ["segments", "/segments"],
        ["segment-new", "/segments/new"],
        ["segment", "/segments/1"],
        ["journeys", "/journeys"],
        ["journey", "/journeys/win-back"],
        ["journey-uplift", "/journeys/win-back/uplift"],
        ["journey-simulation", "/journeys/win-back/simulation"],
        ["feedback", "/feedback"],
        ["settings", "/settings"],
    ]);
    // What the API counts for the expression the browser will type into the editor.
    let expression = "orders >= 3 and stage != \"lost\"";
    let preview =
        api_json(&app, reqwest::Method::POST, "/v1/segments/preview", Some(json!({"expression": expression}))).await;
    let expected = preview["count"].as_i64().expect("a count");
    assert!(expected > 0, "the typed segment selects somebody");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let (base, admin, read) = (app.base.clone(), app.admin.clone(), app.read.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--base", &base, "--admin", &admin, "--read", &read])
            .arg("--chromium")
            .arg(chromium)
            .arg("--axe")
            .arg(axe)
            .arg("--shots")
            .arg(&shots)
            .args(["--hostile", "/customers/xss-1", "--hostile-name", HOSTILE, "--erase", "erase-me"])
            .args(["--pages", &pages.to_string()])
            .args(["--segment-expression", expression, "--segment-count", &expected.to_string()])
            .output()
            .expect("python runs")
    })
    .await
    .expect("the browser run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser found problems:\n{stderr}\n{stdout}");
    let lines: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let shots: Vec<&str> = lines.iter().filter_map(|l| l["screenshot"].as_str()).collect();
    assert_eq!(shots.len(), 34, "17 pages at 2 widths: {stdout}");
    for shot in &shots {
        let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{shot} is {size} bytes");
    }
    assert_eq!(lines.last().map(|l| l["done"].clone()), Some(json!(true)));

    // The segment saved through the editor holds what the API's preview counted.
    let segments = api_json(&app, reqwest::Method::GET, "/v1/segments", None).await;
    let typed = segments["segments"].as_array().into_iter().flatten().find(|s| s["name"] == "typed in the editor");
    assert_eq!(typed.map(|s| s["members"].clone()), Some(json!(expected)), "{segments}");

    // The customer erased through the page is gone from the API.
    assert_eq!(api_status(&app, "/v1/customers/erase-me").await, StatusCode::NOT_FOUND);
    app.stop().await.expect("stopped");
}
