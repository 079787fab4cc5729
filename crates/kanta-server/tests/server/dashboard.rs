//! The dashboard over HTTP, on SQLite and on PostgreSQL: login and sessions, scopes, CSRF,
//! the security headers, escaping of hostile customer text, and what the pages show. (The
//! same pages in a real browser: `dashboard_browser.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use kanta_server::testing::TestApp;
use kanta_store::testing::TestDb;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
    a_token_logs_in_to_a_strict_http_only_session_that_expiry_logout_and_revoking_end,
    only_admin_sessions_export_and_erase_and_every_form_needs_its_csrf_token,
    hostile_customer_text_is_shown_as_text,
    the_overview_shows_the_latest_run_in_the_configured_locale,
    the_customer_list_searches_filters_and_pages,
    segments_are_counted_as_typed_saved_followed_and_downloaded,
    journeys_show_their_flow_versions_uplift_and_pause_from_the_page,
    feedback_shows_the_apis_scores_and_links_the_detractors_to_call,
    settings_make_and_revoke_tokens_show_webhook_health_and_hide_secrets,
);

/// A browser without JavaScript: follows no redirect by itself, keeps the cookies it is given.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// Extra headers sent with every request (`X-Forwarded-Proto`, a foreign `Origin`…).
    extra: Vec<(&'static str, String)>,
}

/// A response.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    /// The body as sent.
    body: String,
    /// The body with `&#x2f;` read as `/`.
    text: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// The value of the first hidden field `name` in the body.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("no field {name} in {}", self.body)) + marker.len();
        self.body[at..].split('"').next().expect("a value").to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        Browser { base: base.to_owned(), client, cookies: BTreeMap::new(), extra: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header("cookie", self.cookie_header()).build().expect("a request");
        for (k, v) in &self.extra {
            request.headers_mut().insert(*k, v.parse().expect("a header value"));
        }
        let response = self.client.execute(request).await.expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        // minijinja escapes `/` in values as `&#x2f;` (harmless in HTML); links read back plain.
        let body = response.text().await.expect("a body");
        let page = Page { status, headers, text: body.replace("&#x2f;", "/"), body };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A form POST from one of the dashboard's own pages (same origin).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded_form(form);
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", self.base.clone())
            .body(body);
        self.send(request).await
    }

    /// Logs in with `token` through the form; the response to the form's POST.
    async fn login(&mut self, token: &str, next: &str) -> Page {
        let form = self.get(&format!("/login?next={next}")).await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.hidden("csrf");
        self.post("/login", &[("token", token), ("csrf", &csrf), ("next", next)]).await
    }

    /// A page computed in the background, once it is there (it says "being computed" until then).
    async fn ready(&mut self, path: &str) -> Page {
        for _ in 0..200 {
            let page = self.get(path).await;
            if !page.body.contains("being computed") {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{path} was not computed within 10 s");
    }

    /// The CSRF token of the session's pages.
    async fn csrf(&mut self) -> String {
        let page = self.get("/customers").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.hidden("csrf")
    }
}

fn serde_urlencoded_form(form: &[(&str, &str)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs `body` to the API as the admin and checks the status.
pub(super) async fn post_status(app: &TestApp, path: &str, body: serde_json::Value, want: StatusCode) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.admin)
        .json(&body)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), want, "{}", response.text().await.unwrap_or_default());
}

pub(super) async fn post_json(app: &TestApp, path: &str, body: serde_json::Value) {
    post_status(app, path, body, StatusCode::OK).await;
}

/// The id of the test application's token of `scope` (`TestApp` makes one of each).
async fn token_id(app: &TestApp, scope: kanta_store::Scope) -> i64 {
    app.store.list_tokens().await.expect("tokens").into_iter().find(|t| t.scope == scope).expect("the token").id
}

pub(super) async fn api_status(app: &TestApp, path: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("a response")
        .status()
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn a_token_logs_in_to_a_strict_http_only_session_that_expiry_logout_and_revoking_end(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let mut browser = Browser::new(&app.base);

    // Without a session every page sends the browser to the login form, and back afterwards.
    let page = browser.get("/customers?stage=lost").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login?next=%2Fcustomers%3Fstage%3Dlost"));
    let form = browser.get("/login?next=%2Fcustomers").await;
    assert_eq!(form.headers["content-security-policy"], CSP);
    assert_eq!(form.headers["cache-control"], "no-store");
    assert_eq!(form.headers["x-frame-options"], "DENY");
    let login_cookie = &form.set_cookies()[0];
    assert!(login_cookie.starts_with("kanta_login="), "{login_cookie}");
    assert!(login_cookie.ends_with("; Path=/login; Max-Age=3600; HttpOnly; SameSite=Strict"), "{login_cookie}");

    // A form posted without its cookie (another site's page) is refused; so is a wrong token
    // and a token that can only write.
    let csrf = form.hidden("csrf");
    let mut stranger = Browser::new(&app.base);
    let page = stranger.post("/login", &[("token", &app.admin), ("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!stranger.cookies.contains_key("kanta_session"));
    let page = browser.login("kanta_0000", "/").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("That token is unknown or revoked."));
    let page = browser.login(&app.ingest, "/").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("An ingest token can only write data"));
    assert!(!browser.cookies.contains_key("kanta_session"));

    // A read token: a session cookie no script can read and no other site sends, for 12 hours.
    let page = browser.login(&app.read, "/customers?stage=lost").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/customers?stage=lost"));
    let session = page.set_cookies().into_iter().find(|c| c.starts_with("kanta_session=")).expect("a session");
    assert!(session.ends_with("; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"), "{session}");
    assert_eq!(browser.cookies["kanta_session"].len(), 64, "256 random bits in hex");
    let page = browser.get("/customers?stage=lost").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("(read)"), "the header names the scope");
    // A login does not follow a `next` off the site.
    let page = browser.login(&app.read, "//evil.example/").await;
    assert_eq!(page.location(), "/");

    // Behind an HTTPS proxy the cookie is Secure.
    let mut secure = Browser::new(&app.base);
    secure.extra.push(("x-forwarded-proto", "https".into()));
    let page = secure.login(&app.read, "/").await;
    assert!(page.set_cookies().iter().any(|c| c.starts_with("kanta_session=") && c.ends_with("; Secure")));

    // Logout needs the session's form token and a same-site request; then the session is gone.
    let csrf = browser.csrf().await;
    let page = browser.post("/logout", &[("csrf", "not-the-token")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    browser.extra.push(("origin", "http://evil.example".into()));
    let page = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "a cross-site POST with the right token");
    browser.extra.clear();
    let old = browser.cookies["kanta_session"].clone();
    let page = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login"));
    assert!(!browser.cookies.contains_key("kanta_session"), "the cookie is cleared");
    browser.cookies.insert("kanta_session".into(), old);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "the old cookie no longer works");

    // Sessions expire…
    assert_eq!(browser.login(&app.read, "/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/customers").await.status, StatusCode::OK);
    app.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert_eq!(browser.get("/customers").await.status, StatusCode::SEE_OTHER);

    // …and end when their token is revoked.
    assert_eq!(browser.login(&app.read, "/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/customers").await.status, StatusCode::OK);
    assert!(app.store.revoke_token(token_id(&app, kanta_store::Scope::Read).await, 0).await.expect("revoke"));
    let page = browser.get("/customers").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login?next=%2Fcustomers"));

    // Static files are served with their types, every response with the policy.
    for (path, kind) in [
        ("/assets/kanta.css", "text/css; charset=utf-8"),
        ("/assets/kanta.js", "text/javascript; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let page = browser.get(path).await;
        assert_eq!((page.status, page.headers["content-type"].to_str().ok()), (StatusCode::OK, Some(kind)), "{path}");
        assert_eq!(page.headers["content-security-policy"], CSP);
    }
    let page = browser.get("/assets/../../etc/passwd").await;
    assert_ne!(page.status, StatusCode::OK);
    app.stop().await.expect("stopped");
}

async fn only_admin_sessions_export_and_erase_and_every_form_needs_its_csrf_token(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    post_json(
        &app,
        "/v1/customers",
        json!([{"id": "ann", "email": "ann@example.org", "name": "Ann"}, {"id": "bob", "name": "Bob"}]),
    )
    .await;
    post_json(
        &app,
        "/v1/orders",
        json!([{"id": "o1", "customer_id": "ann", "time": "2024-01-05T10:00:00Z", "amount": 25, "currency": "EUR"}]),
    )
    .await;

    let mut reader = Browser::new(&app.base);
    reader.login(&app.read, "/").await;
    let page = reader.get("/customers/ann").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/customers/ann/erase"), "a read session is not offered erasure");
    let csrf = page.hidden("csrf");
    let page = reader.post("/customers/ann/erase", &[("csrf", &csrf), ("confirm", "ann")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("this needs a token of scope `admin`"));
    assert_eq!(reader.post("/customers/ann/export", &[("csrf", &csrf)]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api_status(&app, "/v1/customers/ann").await, StatusCode::OK);

    let mut admin = Browser::new(&app.base);
    admin.login(&app.admin, "/").await;
    let page = admin.get("/customers/ann").await;
    assert!(page.text.contains("action=\"/customers/ann/erase\""));
    let csrf = page.hidden("csrf");
    // Another session's token, no token, a wrong confirmation: nothing is erased.
    let other = reader.csrf().await;
    assert_eq!(
        admin.post("/customers/ann/erase", &[("csrf", &other), ("confirm", "ann")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(admin.post("/customers/ann/erase", &[("confirm", "ann")]).await.status, StatusCode::FORBIDDEN);
    let page = admin.post("/customers/ann/erase", &[("csrf", &csrf), ("confirm", "bob")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("nothing was erased"));
    assert_eq!(api_status(&app, "/v1/customers/ann").await, StatusCode::OK);

    // The export: everything, as a download, audited.
    let page = admin.post("/customers/ann/export", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-disposition"], "attachment; filename=\"customer-ann.json\"");
    let record: serde_json::Value = serde_json::from_str(&page.body).expect("JSON");
    assert_eq!(
        (record["profile"]["email"].as_str(), record["orders"][0]["id"].as_str()),
        (Some("ann@example.org"), Some("o1"))
    );

    // The erasure: gone from the API and from the list, audited with the admin's token.
    let page = admin.post("/customers/ann/erase", &[("csrf", &csrf), ("confirm", "ann")]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/customers?erased=ann"));
    let list = admin.get(page.location()).await;
    assert!(list.body.contains("Customer ann was erased"));
    assert!(!list.text.contains("href=\"/customers/ann\""));
    assert_eq!(api_status(&app, "/v1/customers/ann").await, StatusCode::NOT_FOUND);
    assert_eq!(admin.get("/customers/ann").await.status, StatusCode::NOT_FOUND);
    let (audit, _) = app.store.audit_entries(None, 10).await.expect("audit");
    let admin_id = token_id(&app, kanta_store::Scope::Admin).await;
    let actions: Vec<(&str, Option<i64>)> = audit.iter().map(|e| (e.action.as_str(), e.token_id)).collect();
    assert_eq!(actions, [("export", Some(admin_id)), ("erase", Some(admin_id))]);
    app.stop().await.expect("stopped");
}

async fn hostile_customer_text_is_shown_as_text(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let long = "W".repeat(5_000);
    let name = "<script>alert(1)</script>\"><img src=x onerror=alert(2)> ' \u{202e}evil\u{202c}";
    let id = "x\"<b>&'/?#";
    post_json(
        &app,
        "/v1/customers",
        json!([{"id": id, "name": name, "email": "x@example.org", "attributes": {"<i>note</i>": long, "plan": "\"/><script>"}}]),
    )
    .await;
    let mut browser = Browser::new(&app.base);
    browser.login(&app.admin, "/").await;

    let list = browser.get("/customers?q=x%22%3Cb").await;
    assert_eq!(list.status, StatusCode::OK);
    let href = "href=\"/customers/x%22%3Cb%3E%26%27%2F%3F%23\"";
    assert!(list.text.contains(href), "the id is one encoded path segment: {}", list.body);
    let page = browser.get("/customers/x%22%3Cb%3E%26%27%2F%3F%23").await;
    assert_eq!(page.status, StatusCode::OK);
    for raw in ["<script>", "<img", "<b>", "<i>note", "\"/>"] {
        assert!(!page.body.contains(raw) && !list.body.contains(raw), "{raw} reached the page unescaped");
    }
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt; &#x27; \u{202e}evil\u{202c}"));
    assert!(page.body.contains(&long), "a long value is shown whole");
    // The search box shows the query back, escaped, inside its attribute.
    let search = browser.get("/customers?q=%22%3E%3Cscript%3E").await;
    assert!(search.body.contains("value=\"&quot;&gt;&lt;script&gt;\""), "{}", search.body);
    // An error page names the id, escaped.
    let missing = browser.get("/customers/%3Cscript%3Ealert(3)%3C%2Fscript%3E").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("no customer `&lt;script&gt;alert(3)&lt;&#x2f;script&gt;`"), "{}", missing.body);
    assert_eq!(missing.headers["content-security-policy"], CSP);
    // A bad filter is a plain 400, not a failure.
    let bad = browser.get("/customers?stage=%3Cscript%3E").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`&lt;script&gt;` is not a lifecycle stage"));
    app.stop().await.expect("stopped");
}

async fn the_overview_shows_the_latest_run_in_the_configured_locale(db: TestDb) {
    let mut settings = kanta_server::testing::settings();
    settings.dashboard.locale = kanta_server::settings::Checked::parse("de").expect("a locale");
    settings.dashboard.currency = Some("EUR".into());
    // 2024-02-10: the orders below end a few days before.
    let start = kanta_domain::Timestamp::from_micros(1_707_523_200_000_000);
    let app = TestApp::spawn_at(db, settings, start).await;
    let mut browser = Browser::new(&app.base);
    browser.login(&app.read, "/").await;
    let empty = browser.get("/").await;
    assert!(empty.body.contains("No scoring run yet"), "{}", empty.body);

    let mut orders = Vec::new();
    for c in 0..40 {
        for k in 0..(1 + c % 4) {
            orders.push(json!({
                "id": format!("o{c}-{k}"), "customer_id": format!("c{c:02}"),
                "time": format!("2024-01-{:02}T10:00:00Z", 1 + k * 7 + c % 5), "amount": "1234.5", "currency": "EUR",
            }));
        }
    }
    post_json(&app, "/v1/orders", serde_json::Value::Array(orders)).await;
    let run = kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), start.micros())
        .await
        .expect("scoring");
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    // 40 customers, 100 orders of 1,234.50 each: written the German way.
    assert!(page.body.contains("<span class=\"value\">40</span>"), "{}", page.body);
    assert!(page.body.contains("123.450,00\u{a0}EUR"), "revenue");
    assert!(page.body.contains("100 orders"));
    assert!(page.body.contains("<span class=\"value\">75,0\u{a0}%</span>"), "30 of 40 made a second order");
    assert!(page.body.contains(&format!("from scoring run {}", run.run.id)));
    // Every customer was scored for the first time this week: the stage table counts them in.
    let new = run.stages.iter().find(|(s, _)| *s == "new").map_or(0, |s| s.1);
    assert!(
        page.text.contains(&format!("<th scope=\"row\"><a href=\"/customers?stage=new\">new</a></th><td>{new}</td>"))
    );
    assert!(page.body.contains("first scored"));
    // The charts, each with a table beside it.
    for label in ["Customers by lifecycle stage", "Repeat-purchase ladder"] {
        assert!(page.body.contains(&format!("aria-label=\"{label}")), "{label}");
    }
    assert_eq!(page.body.matches("class=\"chart\"").count(), 3);
    assert!(!page.body.contains("style=\""), "no inline style: the policy would refuse it");
    app.stop().await.expect("stopped");
}

async fn the_customer_list_searches_filters_and_pages(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let customers: Vec<_> = (0..120)
        .map(
            |i| json!({"id": format!("k{i:03}"), "email": format!("User{i}@Example.org"), "name": format!("Name {i}")}),
        )
        .collect();
    post_json(&app, "/v1/customers", serde_json::Value::Array(customers)).await;
    let mut browser = Browser::new(&app.base);
    browser.login(&app.read, "/").await;
    let rows = |page: &Page| page.text.matches("<th scope=\"row\"><a href=\"/customers/").count();

    let first = browser.get("/customers").await;
    assert_eq!(rows(&first), 50);
    let next = first.text.split("href=\"").find(|s| s.starts_with("/customers?after="));
    let next = next.expect("a next page").split('"').next().expect("a link").replace("&amp;", "&");
    let second = browser.get(&next).await;
    assert_eq!(rows(&second), 50);
    assert!(second.body.contains("k050") && !second.body.contains(">k049<"));
    assert!(second.body.contains("First page"));
    let third = browser
        .get(
            &second
                .text
                .split("href=\"")
                .find(|s| s.starts_with("/customers?after="))
                .expect("next")
                .split('"')
                .next()
                .expect("link")
                .replace("&amp;", "&"),
        )
        .await;
    assert_eq!(rows(&third), 20);
    assert!(!third.body.contains("rel=\"next\""), "the last page");

    // Search by the start of an email, ignoring case; the filters stay in the next link.
    let found = browser.get("/customers?q=user11").await;
    assert_eq!(rows(&found), 11, "user11 and user110…119");
    assert_eq!(rows(&browser.get("/customers?q=k00").await), 10);
    assert_eq!(rows(&browser.get("/customers?stage=lost").await), 0, "nobody is scored yet");
    assert!(browser.get("/customers?stage=lost").await.body.contains("No customer matches these filters."));
    for bad in [
        "/customers?tier=gold",
        "/customers?risk=some",
        "/customers?segment=x",
        "/customers?after=-1",
        "/customers?sort=name",
    ] {
        assert_eq!(browser.get(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    app.stop().await.expect("stopped");
}

pub(super) async fn api_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base)).bearer_auth(&app.admin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a response");
    response.json().await.expect("JSON")
}

async fn segments_are_counted_as_typed_saved_followed_and_downloaded(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let now = kanta_domain::Clock::now(app.clock.as_ref()).micros();
    let mut orders = Vec::new();
    for c in 0..30 {
        for k in 0..(1 + c % 3) {
            let time = kanta_store::rfc3339(now - (5 + 40 * k + c) * 86_400_000_000);
            orders.push(json!({"id": format!("o{c}-{k}"), "customer_id": format!("s{c:02}"), "time": time, "amount": 10 + c, "currency": "EUR"}));
        }
    }
    post_json(&app, "/v1/orders", serde_json::Value::Array(orders)).await;
    post_json(&app, "/v1/customers", json!([{"id": "s00", "name": "=HYPERLINK(\"http://evil.example\")"}])).await;
    kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), now).await.expect("scoring");

    let mut reader = Browser::new(&app.base);
    reader.login(&app.read, "/").await;
    assert!(reader.get("/segments").await.body.contains("No saved segment yet"));
    let editor = reader.get("/segments/new").await;
    assert_eq!(editor.status, StatusCode::OK);
    let csrf = editor.hidden("csrf");

    // The live count (JSON for the script) is the API's preview count.
    let expression = "orders >= 2 and stage != \"lost\"";
    let api =
        api_json(&app, reqwest::Method::POST, "/v1/segments/preview", Some(json!({"expression": expression}))).await;
    let expected = api["count"].as_i64().expect("a count");
    assert!(expected > 0 && expected < 30, "a segment that selects some: {expected}");
    let live = |browser: &mut Browser, text: &str| {
        let body = serde_urlencoded_form(&[("csrf", &csrf), ("expression", text)]);
        let request = browser
            .client
            .post(format!("{}/segments/preview", browser.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        (request, browser.cookie_header())
    };
    let (request, cookie) = live(&mut reader, expression);
    let answer: serde_json::Value =
        request.header("cookie", cookie).send().await.expect("a response").json().await.expect("JSON");
    assert_eq!(answer["count"].as_i64(), Some(expected), "{answer}");
    assert_eq!(answer["text"], format!("{expected} customers"));
    // A mistake is placed at its line and column, as the API places it.
    let wrong = "orders >= 2\nand clv_12m >> 3";
    let api = api_json(&app, reqwest::Method::POST, "/v1/segments/preview", Some(json!({"expression": wrong}))).await;
    let (request, cookie) = live(&mut reader, wrong);
    let answer: serde_json::Value =
        request.header("cookie", cookie).send().await.expect("a response").json().await.expect("JSON");
    let column = api["error"]["column"].as_u64().expect("the API's column");
    assert_eq!((answer["count"].clone(), answer["problem"]["line"].as_u64()), (serde_json::Value::Null, Some(2)));
    assert_eq!(answer["problem"]["column"].as_u64(), Some(column - 12), "the API counts over the whole text");
    assert_eq!(answer["problem"]["pointer"].as_str().map(|p| p.len() as u64), Some(column - 12));
    // Without script, "Count" posts the form and the page comes back with the count.
    let page = reader.post("/segments/preview", &[("csrf", &csrf), ("expression", expression), ("name", "kept")]).await;
    assert!(page.body.contains(&format!("{expected} customers")), "{}", page.body);
    // A read session counts but does not save.
    assert!(page.body.contains("Saving a segment needs an admin token."));
    let page =
        reader.post("/segments", &[("csrf", &csrf), ("expression", expression), ("name", "repeat buyers")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::new(&app.base);
    admin.login(&app.admin, "/").await;
    let csrf = admin.csrf().await;
    let page = admin.post("/segments", &[("csrf", &csrf), ("expression", expression), ("name", "repeat buyers")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let path = page.location().to_owned();
    let id: i64 = path.trim_start_matches("/segments/").parse().expect("the new segment's id");
    let shown = admin.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains(&format!("<dd>{expected} as of")), "{}", shown.body);
    assert!(
        shown.body.contains("aria-label=\"Members at the end of each day")
            && shown.body.contains("aria-label=\"Entries and exits per day")
    );
    assert!(shown.body.contains("None yet"));
    let again =
        admin.post("/segments", &[("csrf", &csrf), ("expression", expression), ("name", "repeat buyers")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("A segment named “repeat buyers” exists"));
    let bad = admin.post("/segments", &[("csrf", &csrf), ("expression", "orders >"), ("name", "broken")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Line 1, column") && bad.body.contains("value=\"broken\""), "what was typed stays");

    // Two more orders for a one-order customer: the refresh lets them in, and the page shows it.
    let joiner = (0..30).find(|c| c % 3 == 0).map(|c| format!("s{c:02}")).expect("a one-order customer");
    let time = kanta_store::rfc3339(now - 86_400_000_000);
    post_json(
        &app,
        "/v1/orders",
        json!([{"id": "late", "customer_id": joiner, "time": time, "amount": 5, "currency": "EUR"}]),
    )
    .await;
    kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), now).await.expect("scoring");
    let refreshed = admin.post(&format!("/segments/{id}/refresh"), &[("csrf", &csrf)]).await;
    assert_eq!((refreshed.status, refreshed.location()), (StatusCode::SEE_OTHER, path.as_str()));
    let shown = admin.get(&path).await;
    assert!(shown.text.contains(&format!("<a href=\"/customers/{joiner}\">{joiner}</a> entered")), "{}", shown.text);
    let today = kanta_store::rfc3339(now).get(..10).expect("a day").to_owned();
    assert!(
        shown.body.contains(&format!("<th scope=\"row\">{today}</th><td>1</td><td>0</td><td>{}</td>", expected + 1))
    );

    // The CSV download: the API's columns and cells, every member.
    let csv = admin.get(&format!("/segments/{id}/members.csv")).await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.headers["content-disposition"], "attachment; filename=\"segment-repeat_buyers.csv\"");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,email,phone,name,"));
    assert_eq!(lines.len() as i64, expected + 2, "header and every member");
    let api_csv = reqwest::Client::new()
        .get(format!("{}/v1/segments/{id}/customers?format=csv&limit=1000", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("a response")
        .text()
        .await
        .expect("CSV");
    assert_eq!(csv.body, api_csv);

    // Deleting needs the name typed out.
    let page = admin.post(&format!("/segments/{id}/delete"), &[("csrf", &csrf), ("confirm", "repeat")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = admin.post(&format!("/segments/{id}/delete"), &[("csrf", &csrf), ("confirm", "repeat buyers")]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/segments"));
    assert_eq!(admin.get(&path).await.status, StatusCode::NOT_FOUND);
    app.stop().await.expect("stopped");
}

async fn journeys_show_their_flow_versions_uplift_and_pause_from_the_page(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let promo = json!({"name": "promo", "description": "A <b>welcome</b> offer", "trigger": {"event": "signup"},
    "holdout": "50%", "goal": {"event": "order.created", "within": "30d"},
    "steps": [
        {"id": "hello", "send_email": {"subject": "Hi <there>", "html": "<p>Hi</p>"}},
        {"wait": "3d"},
        {"branch": {"if": "orders >= 2", "then": "exit", "else": [{"send_email": {"subject": "Again", "html": "<p>Again</p>"}}]}}
    ]});
    post_status(&app, "/v1/journeys", promo.clone(), StatusCode::CREATED).await;
    let mut browser = Browser::new(&app.base);
    browser.login(&app.admin, "/").await;
    let csrf = browser.csrf().await;
    // Paused from the page, so the server's engine leaves the runs below where they are.
    let page = browser.post("/journeys/promo/pause", &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/journeys/promo"));
    let listed = api_json(&app, reqwest::Method::GET, "/v1/journeys", None).await;
    assert_eq!(listed["journeys"][0]["paused"], true, "{listed}");

    let ids = ["t1", "t2", "k1", "k2"];
    post_json(&app, "/v1/customers", json!(ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>())).await;
    crate::enter_promo_arms(&app, "hello", &ids).await;

    let list = browser.get("/journeys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains("<a href=\"/journeys/promo\">promo</a></th><td>1</td><td><span class=\"badge paused\">paused</span></td><td>2</td><td>4</td><td>2</td>"), "{}", list.text);

    let page = browser.get("/journeys/promo").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("A &lt;b&gt;welcome&lt;&#x2f;b&gt; offer"), "the description is text");
    assert!(page.body.contains("event signup") && page.body.contains("event order.created within 30d"));
    // The flow: the email with its two waiting runs, the wait, the branch and its arms.
    let flow: Vec<&str> = page
        .body
        .split("<span class=\"what text\">")
        .skip(1)
        .map(|s| s.split("</span>").last().unwrap_or_default())
        .collect();
    assert_eq!(flow.len(), 4, "{}", page.body);
    assert!(page.body.contains("send email “Hi &lt;there&gt;”</span>\n      <span class=\"id\">hello</span>\n      <span class=\"counts\"><strong>2</strong> waiting here"), "{}", page.body);
    assert!(page.body.contains("<li class=\"arm depth-1\" aria-hidden=\"true\">else</li>"));
    assert!(page.body.contains("if orders &gt;= 2; if so, exit"), "an arm that only exits is said on the branch");
    assert!(page.text.contains("action=\"/journeys/promo/resume\""), "a paused journey offers resume");

    // The uplift report: computed in the background (the first view says so and reloads
    // itself), then the same arms as the API's.
    let first = browser.get("/journeys/promo/uplift").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.body.contains("The report is being computed")
            && first.body.contains("<meta http-equiv=\"refresh\" content=\"5\">")
    );
    let uplift = browser.ready("/journeys/promo/uplift").await;
    assert!(uplift.body.contains("recomputed when a view finds it older than 10 minutes"), "{}", uplift.body);
    assert!(
        uplift.body.contains("<th scope=\"row\">treatment</th><td>2</td><td>2</td><td>1</td><td>50.0%</td>"),
        "{}",
        uplift.body
    );
    assert!(uplift.body.contains("<th scope=\"row\">control</th><td>2</td><td>2</td><td>0</td><td>0.0%</td>"));
    assert!(uplift.body.contains("aria-label=\"Cumulative conversion by day since entry\""));
    // The simulation of the next 30 days, from the server's engine, computed in the background.
    let simulation = browser.ready("/journeys/promo/simulation").await;
    assert_eq!(simulation.status, StatusCode::OK, "{}", simulation.body);
    assert!(
        simulation.body.contains("<dt>customers in the store</dt><dd class=\"text\">4</dd>"),
        "{}",
        simulation.body
    );
    assert!(
        simulation.body.contains("<th scope=\"row\" class=\"text\">hello</th><td>send_email</td>"),
        "{}",
        simulation.body
    );
    assert!(
        simulation.body.contains("aria-label=\"Entries per day")
            && simulation.body.contains("aria-label=\"Sends per day")
    );
    assert_eq!(browser.get("/journeys/nope/simulation").await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get("/journeys/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get("/journeys/nope/uplift").await.status, StatusCode::NOT_FOUND);

    // A read session sees the journey but cannot resume it.
    let mut reader = Browser::new(&app.base);
    reader.login(&app.read, "/").await;
    let seen = reader.get("/journeys/promo").await;
    assert!(!seen.text.contains("/journeys/promo/resume"));
    let read_csrf = reader.csrf().await;
    assert_eq!(reader.post("/journeys/promo/resume", &[("csrf", &read_csrf)]).await.status, StatusCode::FORBIDDEN);
    // The admin resumes it.
    let page = browser.post("/journeys/promo/resume", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let listed = api_json(&app, reqwest::Method::GET, "/v1/journeys", None).await;
    assert_eq!(listed["journeys"][0]["paused"], false);
    app.stop().await.expect("stopped");
}

async fn feedback_shows_the_apis_scores_and_links_the_detractors_to_call(db: TestDb) {
    let app = TestApp::spawn(db, kanta_server::testing::settings()).await;
    let now = kanta_domain::Clock::now(app.clock.as_ref()).micros();
    let day = 86_400_000_000;
    let mut orders = Vec::new();
    let mut feedback = Vec::new();
    for c in 0..12 {
        for k in 0..3 {
            let time = kanta_store::rfc3339(now - (10 + 30 * k + c) * day);
            orders.push(json!({"id": format!("o{c}-{k}"), "customer_id": format!("f{c:02}"), "time": time, "amount": 100 + 10 * c, "currency": "EUR"}));
        }
        let nps = [0, 3, 7, 7, 8, 9, 10, 10, 2, 9, 10, 5][c as usize];
        let text = if c == 11 { "<script>alert('late')</script> delivery was late" } else { "fine" };
        feedback.push(json!({"id": format!("fb{c}"), "customer_id": format!("f{c:02}"), "time": kanta_store::rfc3339(now - (5 + c) * day),
            "nps": nps, "csat": 1 + (nps / 3).min(4), "text": text, "topics": ["delivery"]}));
    }
    post_json(&app, "/v1/orders", serde_json::Value::Array(orders)).await;
    post_json(&app, "/v1/feedback", serde_json::Value::Array(feedback)).await;
    kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), now).await.expect("scoring");
    let api = api_json(&app, reqwest::Method::GET, "/v1/insights/feedback", None).await;

    let mut browser = Browser::new(&app.base);
    browser.login(&app.read, "/").await;
    // Computed in the background: the first view says so, a later one has the numbers.
    let first = browser.get("/feedback").await;
    assert!(first.body.contains("The insights are being computed"), "{}", first.body);
    let page = browser.ready("/feedback").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("12 responses from 12 customers"));
    // 5 promoters (9, 10, 10, 9, 10), 4 detractors (0, 3, 2, 5) of 12: NPS 100 · 1/12 ≈ 8.
    assert_eq!(api["overall"]["nps"].as_f64().map(f64::round), Some(8.0), "{api}");
    assert!(page.body.contains("<tr><th scope=\"row\">all</th><td>12</td><td>8</td>"), "{}", page.body);
    for label in ["NPS by month", "Satisfied (CSAT 4–5) by month"] {
        assert!(page.body.contains(&format!("aria-label=\"{label}")), "{label}");
    }
    // The call list: as many as the API's, each linked to the customer's page, the text escaped.
    let calls = api["call_list"].as_array().expect("a list");
    assert!(!calls.is_empty(), "{api}");
    for call in calls {
        let id = call["customer"].as_str().expect("an id");
        assert!(page.text.contains(&format!("<a href=\"/customers/{id}\">{id}</a>")), "{id}");
    }
    assert!(!page.body.contains("<script>alert"));
    assert!(
        page.body.contains("&lt;script&gt;alert(&#x27;late&#x27;)&lt;&#x2f;script&gt; delivery was late"),
        "f11 is on the list, the text escaped"
    );
    app.stop().await.expect("stopped");
}

async fn settings_make_and_revoke_tokens_show_webhook_health_and_hide_secrets(db: TestDb) {
    let mut settings = kanta_server::testing::settings();
    let secret = "unsubscribe-secret-that-must-not-show";
    let text = format!(
        "[email]\nfrom = \"Shop <hello@shop.example>\"\nunsubscribe_secret = \"{secret}\"\n\
         [[webhooks]]\nname = \"crm\"\nurl = \"http://user:hunter2@127.0.0.1:9/hook\"\nsecret = \"webhook-secret-0123456789\"\n\
         events = [\"customer.stage_changed\"]\n"
    );
    let parsed = kanta_server::settings::parse(&text).expect("valid settings");
    settings.email = parsed.email;
    settings.webhooks = parsed.webhooks;
    let app = TestApp::spawn(db, settings).await;

    // A read session has no settings page and no link to it.
    let mut reader = Browser::new(&app.base);
    reader.login(&app.read, "/").await;
    let overview = reader.get("/customers").await;
    assert!(!overview.text.contains("href=\"/settings\""));
    assert_eq!(reader.get("/settings").await.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::new(&app.base);
    admin.login(&app.admin, "/").await;
    let page = admin.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    for hidden in [secret, "hunter2", "webhook-secret-0123456789"] {
        assert!(!page.body.contains(hidden), "{hidden} is shown");
    }
    assert!(page.body.contains("[dashboard]"), "the settings in effect");
    assert!(page.text.contains("<th scope=\"row\" class=\"text\">crm</th>"), "the endpoint is listed");
    let csrf = page.hidden("csrf");

    // A new token is shown once and works; revoked, it stops working.
    let made = admin.post("/settings/tokens", &[("csrf", &csrf), ("scope", "read"), ("name", "BI <tool>")]).await;
    assert_eq!(made.status, StatusCode::OK);
    let marker = "id=\"new-token\" type=\"text\" readonly value=\"";
    let at = made.body.find(marker).expect("the token") + marker.len();
    let token = &made.body[at..at + 70];
    assert!(token.starts_with("kanta_") && token[6..].bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert!(made.body.contains("BI &lt;tool&gt;"));
    let call = |token: String| {
        let base = app.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/v1/customers"))
                .bearer_auth(token)
                .send()
                .await
                .expect("a response")
                .status()
        }
    };
    assert_eq!(call(token.to_owned()).await, StatusCode::OK);
    assert!(!admin.get("/settings").await.body.contains(token), "shown once");
    let id = app.store.list_tokens().await.expect("tokens").into_iter().map(|t| t.id).max().expect("a token");
    let page = admin.post(&format!("/settings/tokens/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/settings"));
    assert_eq!(call(token.to_owned()).await, StatusCode::UNAUTHORIZED);
    let bad = admin.post("/settings/tokens", &[("csrf", &csrf), ("scope", "root"), ("name", "x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`root` is not a scope"));

    // Revoking the session's own token ends the session.
    let own = token_id(&app, kanta_store::Scope::Admin).await;
    let page = admin.post(&format!("/settings/tokens/{own}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location(), "/login");
    assert_eq!(admin.get("/settings").await.status, StatusCode::SEE_OTHER);
    app.stop().await.expect("stopped");
}
