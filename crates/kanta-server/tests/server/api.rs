//! The API suite: the whole application on a loopback port over a fresh store, driven over
//! HTTP, on SQLite and on PostgreSQL.

use kanta_server::testing::TestApp;
use kanta_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| super::App::spawn(db).await;
    orders_are_ingested_and_the_360_view_has_the_analyze_summary,
    calls_need_a_token_with_the_right_scope,
    a_batch_with_a_bad_record_writes_nothing_and_lists_every_problem,
    partial_batches_store_the_valid_records,
    times_before_1970_or_far_ahead_of_the_clock_are_refused_naming_the_field,
    idempotency_keys_replay_the_first_response,
    idempotent_responses_are_not_replayed_after_a_day,
    erasure_leaves_no_personal_data_in_the_store,
    malformed_and_oversized_requests_get_json_errors,
    customers_are_listed_with_a_cursor,
    export_and_erasure_need_admin_and_are_audited,
    health_metrics_and_openapi_are_served,
    sql_looking_strings_in_every_field_are_data,
    segment_previews_count_and_refuse_bad_expressions_with_their_column,
    scores_show_in_the_360_view_and_runs_are_listed,
    saved_segments_list_members_as_json_or_csv_and_record_transitions,
    webhook_endpoints_and_the_delivery_log_are_listed_and_paused_ones_resumed,
    feedback_insights_score_group_and_list_valuable_detractors,
    inbound_hooks_map_crm_json_onto_customers_and_check_the_sender,
    a_replayed_consent_grant_is_refused_after_a_revocation,
    signed_inbound_requests_need_a_fresh_timestamp_and_count_once,
    a_bounces_hook_fills_the_suppression_list_and_counts_a_signed_report_once,
);

const HOOK_SECRET: &str = "crm-shared-secret-0123";

/// The inbound hooks every test server has, as an operator writes them: a HubSpot-like `crm`
/// signed with HMAC-SHA256, a `signed` one with Kanta-Signature, and a `tokened` one behind a
/// kanta token.
fn inbound_settings() -> String {
    format!(
        r#"
[[inbound]]
name = "crm"
auth = "hmac-sha256"
secret = "{HOOK_SECRET}"
signature_header = "X-Signature-256"
timestamp_header = "X-CRM-Timestamp"
records = "contacts"
[inbound.fields]
id = "vid"
email = "properties.email.value"
name = "properties.firstname.value"
"attributes.lifecycle" = "properties.lifecyclestage.value"
"consent.email" = "properties.email_optin.value"

[[inbound]]
name = "signed"
auth = "kanta-signature"
secret = "{HOOK_SECRET}"
[inbound.fields]
id = "customer.id"
phone = "customer.phone"

[[inbound]]
name = "tokened"
auth = "token"
[inbound.fields]
id = "id"

[[inbound]]
name = "esp"
kind = "bounces"
auth = "kanta-signature"
secret = "{HOOK_SECRET}"
records = "events"
[inbound.fields]
address = "recipient"
kind = "event"
source = "provider"
"#
    )
}

/// The whole application (API, scheduler, webhook workers) over a fresh store, with an HTTP
/// client; derefs to the harness's [`TestApp`] (base URL, tokens, store, clock, database).
struct App {
    server: TestApp,
    client: reqwest::Client,
}

impl std::ops::Deref for App {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.server
    }
}

impl App {
    async fn spawn(db: TestDb) -> App {
        let mut settings = kanta_server::testing::settings();
        settings.inbound = kanta_server::settings::parse(&inbound_settings()).expect("valid settings").inbound;
        App { server: TestApp::spawn(db, settings).await, client: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, token: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("a response");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("a response");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// A GET's status, headers and body text (for CSV).
    async fn get_text(
        &self,
        path: &str,
        token: &str,
        accept: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("accept", accept)
            .send()
            .await
            .expect("a response");
        (response.status(), response.headers().clone(), response.text().await.expect("a body"))
    }

    /// A POST with exactly these headers (no token unless given).
    async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("a response");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.client.delete(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("a response").status()
    }

    async fn orders(&self) -> i64 {
        self.store.counts().await.expect("counts").orders
    }
}

fn orders_json() -> String {
    json!([
        {"id": "o1", "customer_id": "00042", "time": "2024-01-05T10:00:00Z", "amount": "19.90", "currency": "EUR",
         "lines": [{"product": "beans", "category": "coffee", "quantity": 2, "price": "9.95"}]},
        {"id": "o2", "customer_id": "00042", "time": "2024-02-05T10:00:00Z", "amount": 30, "currency": "EUR"},
        {"id": "o3", "customer_id": "00042", "time": "2024-02-05T18:00:00Z", "amount": 10, "currency": "EUR"},
        {"id": "o4", "customer_id": "c7", "time": "2024-02-06T10:00:00+02:00", "amount": 12.5, "currency": "EUR"}
    ])
    .to_string()
}

async fn orders_are_ingested_and_the_360_view_has_the_analyze_summary(app: App) {
    let (status, body) = app.post("/v1/orders", &app.ingest, orders_json()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 4, "created": 4, "updated": 0, "unchanged": 0, "customers_created": 2, "rejected": []})
    );
    let (status, again) = app.post("/v1/orders", &app.ingest, orders_json()).await;
    assert_eq!((status, &again["unchanged"], &again["created"]), (StatusCode::OK, &json!(4), &json!(0)));

    let (status, view) = app.get("/v1/customers/00042", &app.read).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["profile"]["id"], "00042");
    assert_eq!(view["orders"].as_array().map(Vec::len), Some(3));
    assert_eq!(view["orders"][0]["lines"][0]["product"], "beans");
    let s = &view["summary"];
    // Two purchase days (Jan 5; Feb 5 twice): frequency 1, recency 31 days, monetary = the
    // repeat day's 40.00, revenue 59.90 — the definitions of `kanta analyze`.
    assert_eq!((&s["orders"], &s["frequency"], &s["recency"]), (&json!(3), &json!(1), &json!(31)));
    assert_eq!((&s["revenue"], &s["monetary"]), (&json!(59.9), &json!(40.0)));
    // The customer's own facts only: what needs the whole base comes from a scoring run, and
    // there has been none.
    assert!(s.get("segment").is_none() && s.get("stage").is_none() && s.get("r").is_none(), "{s}");
    let now = kanta_domain::Clock::now(app.clock.as_ref());
    let today = kanta_core::time::Timestamp::from(now).day();
    assert_eq!(view["as_of"], today.to_string());
    assert_eq!(s["T"].as_i64(), Some(i64::from(today.0) - 19_727), "days since 2024-01-05, the first purchase");
    assert_eq!((&view["scores"], &view["scored_at"]), (&Value::Null, &Value::Null));
    assert!(view.get("analysis").is_none(), "{view}");

    // A new order is reflected on the next read.
    let more =
        json!([{"id": "o5", "customer_id": "00042", "time": "2024-03-01T10:00:00Z", "amount": 5, "currency": "EUR"}]);
    app.post("/v1/orders", &app.ingest, more.to_string()).await;
    let (_, view) = app.get("/v1/customers/00042", &app.read).await;
    assert_eq!(view["summary"]["orders"], 4);

    let (status, missing) = app.get("/v1/customers/42", &app.read).await;
    assert_eq!((status, &missing["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
}

async fn calls_need_a_token_with_the_right_scope(app: App) {
    let no_token =
        app.client.post(format!("{}/v1/orders", app.base)).body(orders_json()).send().await.expect("response");
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let body: Value = no_token.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, _) = app.post("/v1/orders", "kanta_not_a_real_token", orders_json()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post("/v1/orders", &app.read, orders_json()).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")));
    let (status, _) = app.get("/v1/customers", &app.ingest).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/v1/customers/x/export", &app.read).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.orders().await, 0, "refused calls write nothing");
    let (status, _) = app.post("/v1/orders", &app.admin, orders_json()).await;
    assert_eq!(status, StatusCode::OK, "admin may do everything");
}

async fn a_batch_with_a_bad_record_writes_nothing_and_lists_every_problem(app: App) {
    let batch = json!([
        {"id": "o1", "customer_id": "c1", "time": "2024-01-05T10:00:00Z", "amount": 1, "currency": "EUR"},
        {"id": "o2", "customer_id": "c1", "time": "2024-01-05 10:00", "amount": 1, "currency": "EUR"},
        {"id": "o3", "customer_id": "c1", "time": "2024-01-05T10:00:00Z", "amount": "ten", "currency": "EUR",
         "lines": [{"product": "x", "quantity": -2, "price": 1}]},
        {"id": "o4", "customer_id": "c1", "time": "2024-01-05T10:00:00Z", "amount": 1, "currency": "EUR", "coupon": "X"}
    ]);
    let (status, body) = app.post("/v1/orders", &app.ingest, batch.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_records");
    let problems: Vec<(u64, &str)> = body["error"]["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (r["index"].as_u64().unwrap_or(99), r["field"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(problems, [(1, "time"), (2, "amount"), (2, "lines[0].quantity"), (3, "coupon")]);
    assert_eq!(app.orders().await, 0);
    assert_eq!(app.store.counts().await.expect("counts").customers, 0);
}

/// Regression (issue 16): one order dated in year 1 made every later scoring run allocate a
/// cohort matrix of tens of gigabytes.
async fn times_before_1970_or_far_ahead_of_the_clock_are_refused_naming_the_field(app: App) {
    let batch = json!([
        {"id": "o1", "customer_id": "c1", "time": "0001-01-01T00:00:00Z", "amount": 1, "currency": "EUR"},
        {"id": "o2", "customer_id": "c1", "time": "2026-01-05T10:00:00Z", "amount": 1, "currency": "EUR"},
        {"id": "o3", "customer_id": "c1", "time": "2100-01-01T00:00:00Z", "amount": 1, "currency": "EUR"}
    ]);
    let (status, body) = app.post("/v1/orders", &app.ingest, batch.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let records = body["error"]["records"].as_array().expect("records");
    assert_eq!(records.len(), 2, "{body}");
    assert_eq!((records[0]["index"].as_u64(), records[0]["field"].as_str()), (Some(0), Some("time")));
    assert_eq!(
        records[0]["reason"],
        "`0001-01-01T00:00:00Z` is before 1970-01-01T00:00:00Z, the earliest accepted time"
    );
    assert_eq!((records[1]["index"].as_u64(), records[1]["field"].as_str()), (Some(2), Some("time")));
    assert!(records[1]["reason"].as_str().is_some_and(|r| r.contains("is in the future")), "{body}");
    assert_eq!(app.orders().await, 0);
    let (status, body) = app.post("/v1/orders?partial=true", &app.ingest, batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.orders().await, 1, "only the order inside the range is stored");
    let event = json!([{"customer_id": "c1", "name": "viewed", "time": "1960-05-01T00:00:00Z"}]);
    let (status, body) = app.post("/v1/events", &app.ingest, event.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["records"][0]["field"], "time");
}

async fn partial_batches_store_the_valid_records(app: App) {
    let batch = json!([
        {"id": "o1", "customer_id": "c1", "time": "2024-01-05T10:00:00Z", "amount": 1, "currency": "EUR"},
        {"id": "o2", "customer_id": "c1", "time": "yesterday", "amount": 1, "currency": "EUR"},
        {"id": "o3", "customer_id": "c2", "time": "2024-01-06T10:00:00Z", "amount": 2, "currency": "EUR"}
    ]);
    let (status, body) = app.post("/v1/orders?partial=true", &app.ingest, batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["accepted"], &body["created"]), (&json!(2), &json!(2)));
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["field"], "time");
    assert_eq!(app.orders().await, 2);
}

async fn idempotency_keys_replay_the_first_response(app: App) {
    let send = |body: String, key: &'static str| {
        app.client
            .post(format!("{}/v1/orders", app.base))
            .bearer_auth(&app.ingest)
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let first = send(orders_json(), "batch-1").await.expect("response");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let replay = send(orders_json(), "batch-1").await.expect("response");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay, first, "the first response (created 4), not a fresh one (unchanged 4)");
    assert_eq!(replay["created"], 4);

    let other = send("[]".into(), "batch-1").await.expect("response");
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let other: Value = other.json().await.expect("json");
    assert_eq!(other["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.orders().await, 4);
}

async fn malformed_and_oversized_requests_get_json_errors(app: App) {
    let (status, body) = app.post("/v1/orders", &app.ingest, "{\"id\": 1").await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("bad_request")));
    let (status, body) = app.post("/v1/orders", &app.ingest, "{\"id\": 1}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("JSON array")), "{body}");

    let record = json!({"id": "o", "customer_id": "c", "time": "2024-01-05T10:00:00Z", "amount": 1, "currency": "EUR"});
    let too_many = Value::Array(vec![record; kanta_store::record::MAX_BATCH + 1]);
    let (status, body) = app.post("/v1/orders", &app.ingest, too_many.to_string()).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("too_large")));

    let huge = format!("[\"{}\"]", "x".repeat(kanta_api::BODY_LIMIT));
    let (status, body) = app.post("/v1/orders", &app.ingest, huge).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("too_large")));

    let (status, body) = app.post("/v1/orders?partial=yes", &app.ingest, "[]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app.post("/v1/orders?dry_run=true", &app.ingest, "[]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/v2/nothing", &app.read).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
    assert_eq!(app.orders().await, 0);

    // Regression (issue 16): two orders at the largest amount broke every revenue segment.
    let huge = json!([{"id": "h1", "customer_id": "whale", "time": "2024-01-05T10:00:00Z",
                       "amount": "922337203685477.5807", "currency": "EUR"}]);
    let (status, body) = app.post("/v1/orders", &app.ingest, huge.to_string()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("total_too_large")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("customer `whale`")), "{body}");
    assert_eq!(app.orders().await, 0);

    // Regression (issue 16): 405 had an empty body, and an oversized hook body got 400.
    for method in ["PUT", "PATCH", "FOO"] {
        let response = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
                format!("{}/v1/orders", app.base),
            )
            .bearer_auth(&app.ingest)
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.headers().get("allow").and_then(|a| a.to_str().ok()), Some("POST"), "{method}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(
            (body["error"]["status"].as_u64(), &body["error"]["code"]),
            (Some(405), &json!("method_not_allowed"))
        );
    }
    let huge_hook = format!("{{\"x\": \"{}\"}}", "x".repeat(kanta_api::BODY_LIMIT));
    let (status, body) =
        app.post_raw("/v1/hooks/tokened", &[("authorization", &format!("Bearer {}", app.ingest))], &huge_hook).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("too_large")), "{body}");
    let big_preview = format!("{{\"expression\": \"{}\"}}", "x".repeat(kanta_api::BODY_LIMIT));
    let (status, body) = app.post("/v1/segments/preview", &app.read, big_preview).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("too_large")), "{body}");
}

async fn customers_are_listed_with_a_cursor(app: App) {
    let customers: Vec<Value> =
        (0..25).map(|i| json!({"id": format!("c{i:02}"), "email": format!("c{i}@example.com")})).collect();
    let (status, _) = app.post("/v1/customers", &app.ingest, Value::Array(customers).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let mut ids = Vec::new();
    let mut path = "/v1/customers?limit=10".to_string();
    loop {
        let (status, page) = app.get(&path, &app.read).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        ids.extend(
            page["customers"].as_array().expect("list").iter().map(|c| c["id"].as_str().unwrap_or("?").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/customers?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
    assert_eq!(ids, expected);
    for bad in
        ["/v1/customers?cursor=abc", "/v1/customers?limit=0", "/v1/customers?limit=5000", "/v1/customers?sort=id"]
    {
        let (status, _) = app.get(bad, &app.read).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn idempotent_responses_are_not_replayed_after_a_day(app: App) {
    let send = || {
        app.client
            .post(format!("{}/v1/orders", app.base))
            .bearer_auth(&app.ingest)
            .header("idempotency-key", "daily")
            .body(orders_json())
            .send()
    };
    let first = send().await.expect("response");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let hour = std::time::Duration::from_secs(3600);
    app.clock.advance(23 * hour);
    let replay = send().await.expect("response");
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "within the day");
    assert_eq!(replay.json::<Value>().await.expect("json")["created"], 4);

    app.clock.advance(2 * hour);
    let late = send().await.expect("response");
    assert!(late.headers().get("idempotent-replayed").is_none(), "expired after 24 hours");
    let late: Value = late.json().await.expect("json");
    assert_eq!((&late["created"], &late["unchanged"]), (&json!(0), &json!(4)), "run again: {late}");
    let replay = send().await.expect("response");
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "the new response is remembered");
    assert_eq!(replay.json::<Value>().await.expect("json"), late);
    // The first response's row was deleted when the new one was remembered.
    app.db.checkpoint().await.expect("checkpoint");
    let left = app.db.stored(&[r#""created":4"#]).await.expect("stored");
    assert!(left.is_empty(), "{left:?}");
}

async fn erasure_leaves_no_personal_data_in_the_store(app: App) {
    let (id, email, phone, name, ip) = (
        "zeb-id-5417",
        "zebulon.quartermaine.7731@example.org",
        "+358407731918",
        "Zebulon Quartermaine",
        "203.0.113.177",
    );
    // Idempotent partial batches whose rejections quote the email and phone, and the name
    // (which only the request's id ties to the customer).
    let batches = [
        (
            "zeb-batch",
            json!([
                {"id": id, "email": email, "phone": phone, "name": name},
                {"id": id, "email": format!("{email} "), "phone": format!("{phone}x")},
                {"id": "keeper-8812", "email": "keeper.8812@example.org"}
            ]),
        ),
        ("zeb-name", json!([{"id": id, "name": format!("{name}\u{7}")}])),
    ];
    for (key, batch) in batches {
        let response = app
            .client
            .post(format!("{}/v1/customers?partial=true", app.base))
            .bearer_auth(&app.ingest)
            .header("idempotency-key", key)
            .body(batch.to_string())
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.text().await.expect("a body");
        assert!(body.contains(name) || (body.contains(email) && body.contains(phone)), "quoted: {body}");
    }
    let orders =
        json!([{"id": "zo1", "customer_id": id, "time": "2024-01-05T10:00:00Z", "amount": 5, "currency": "EUR"}]);
    let events =
        json!([{"customer_id": id, "name": "login", "time": "2024-01-01T00:00:00Z", "properties": {"ip": ip}}]);
    let feedback = json!([{"id": "zf1", "customer_id": id, "time": "2024-01-02T00:00:00Z", "nps": 2,
                           "text": format!("{name} here, slow delivery")}]);
    for (path, batch) in [("/v1/orders", orders), ("/v1/events", events), ("/v1/feedback", feedback)] {
        let (status, body) = app.post(path, &app.ingest, batch.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, _) = app.get(&format!("/v1/customers/{id}/export"), &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    let needles = [email, phone, name, ip, id];
    let before = app.db.stored(&needles).await.expect("stored");
    for needle in needles {
        assert!(before.iter().any(|(n, _)| n == needle), "{needle} is stored before: {before:?}");
    }

    assert_eq!(app.delete(&format!("/v1/customers/{id}"), &app.admin).await, StatusCode::NO_CONTENT);
    let left = app.db.stored(&needles).await.expect("stored");
    assert!(left.is_empty(), "personal data left after DELETE: {left:#?}");
    let kept = app.db.stored(&["keeper.8812@example.org"]).await.expect("stored");
    assert!(!kept.is_empty(), "the other customer is still found");
}

async fn export_and_erasure_need_admin_and_are_audited(app: App) {
    app.post("/v1/orders", &app.ingest, orders_json()).await;
    let profile = json!([{"id": "00042", "email": "anna@example.fi", "name": "Anna"}]);
    app.post("/v1/customers", &app.ingest, profile.to_string()).await;
    let events = json!([{"customer_id": "00042", "name": "login", "time": "2024-01-01T00:00:00Z"}]);
    app.post("/v1/events", &app.ingest, events.to_string()).await;

    let (status, export) = app.get("/v1/customers/00042/export", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&export["profile"]["email"], export["events"].as_array().map(Vec::len)),
        (&json!("anna@example.fi"), Some(1))
    );

    let delete = |token: &str| app.client.delete(format!("{}/v1/customers/00042", app.base)).bearer_auth(token).send();
    assert_eq!(delete(&app.read).await.expect("response").status(), StatusCode::FORBIDDEN);
    assert_eq!(delete(&app.admin).await.expect("response").status(), StatusCode::NO_CONTENT);
    assert_eq!(delete(&app.admin).await.expect("response").status(), StatusCode::NOT_FOUND);
    let (status, _) = app.get("/v1/customers/00042", &app.read).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.orders().await, 4, "orders are kept for the aggregates");
    let facts = app.store.order_facts().await.expect("facts");
    assert!(facts.iter().filter(|f| f.customer.starts_with("erased:")).count() == 3);

    let (status, _) = app.get("/v1/audit", &app.read).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, log) = app.get("/v1/audit", &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> =
        log["entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["export", "erase"]);
    let customers: Vec<&str> =
        log["entries"].as_array().expect("entries").iter().filter_map(|e| e["customer"].as_str()).collect();
    assert!(customers.iter().all(|c| c.starts_with("erased:")), "no erased id stays in the log: {customers:?}");
}

async fn sql_looking_strings_in_every_field_are_data(app: App) {
    let nasty = "x'); DROP TABLE orders; --";
    let customers = json!([{"id": nasty, "name": nasty, "timezone": "UTC", "attributes": {nasty: nasty},
                            "consent": [{"channel": "email", "status": "granted", "source": nasty}]}]);
    let (status, body) = app.post("/v1/customers", &app.ingest, customers.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let orders = json!([{"id": nasty, "customer_id": nasty, "time": "2024-01-05T10:00:00Z", "amount": 1, "currency": "EUR",
                         "lines": [{"product": nasty, "category": nasty, "quantity": 1, "price": 1}]}]);
    assert_eq!(app.post("/v1/orders", &app.ingest, orders.to_string()).await.0, StatusCode::OK);
    let events = json!([{"id": nasty, "customer_id": nasty, "name": nasty, "time": "2024-01-05T10:00:00Z", "properties": {nasty: nasty}}]);
    assert_eq!(app.post("/v1/events", &app.ingest, events.to_string()).await.0, StatusCode::OK);
    let feedback = json!([{"id": nasty, "customer_id": nasty, "time": "2024-01-05T10:00:00Z", "text": nasty,
                           "topics": [nasty], "channel": nasty, "order_id": nasty}]);
    assert_eq!(app.post("/v1/feedback", &app.ingest, feedback.to_string()).await.0, StatusCode::OK);
    // Where a field has a format, SQL is just an invalid value.
    let bad =
        json!([{"id": "c2", "email": nasty, "phone": nasty, "timezone": nasty, "locale": nasty, "birthday": nasty}]);
    let (status, body) = app.post("/v1/customers", &app.ingest, bad.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["records"].as_array().map(Vec::len), Some(5));
    let bad_time = json!([{"id": "o2", "customer_id": "c", "time": nasty, "amount": nasty, "currency": nasty}]);
    assert_eq!(app.post("/v1/orders", &app.ingest, bad_time.to_string()).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let path = format!("/v1/customers/{}", nasty.replace('\'', "%27").replace(' ', "%20").replace(';', "%3B"));
    let (status, view) = app.get(&path, &app.read).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["profile"]["name"], nasty);
    assert_eq!(view["profile"]["attributes"][nasty], nasty);
    assert_eq!(view["orders"][0]["lines"][0]["category"], nasty);
    assert_eq!(view["events"][0]["properties"][nasty], nasty);
    assert_eq!(view["feedback"][0]["topics"][0], nasty.to_lowercase());
    assert_eq!(view["consent"][0]["source"], nasty);
    let c = app.store.counts().await.expect("counts");
    assert_eq!((c.customers, c.orders, c.events, c.feedback), (1, 1, 1, 1));
}

async fn health_metrics_and_openapi_are_served(app: App) {
    let health: Value =
        app.client.get(format!("{}/healthz", app.base)).send().await.expect("response").json().await.expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], serde_json::to_value(app.store.backend()).expect("json"));

    app.post("/v1/orders", &app.ingest, orders_json()).await;
    // Regression (issue 16): any method name became a new series, without a token.
    for method in ["FOO", "BAR", "PROPFIND"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        app.client.request(m, format!("{}/healthz", app.base)).send().await.expect("a response");
    }
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(&app.read)
        .send()
        .await
        .expect("response")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("kanta_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kanta_records_total{kind=\"orders\",outcome=\"created\"} 4"), "{metrics}");
    assert!(metrics.contains("kanta_store_rows{table=\"orders\"} 4"), "{metrics}");
    assert!(
        metrics.contains("kanta_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 3"),
        "{metrics}"
    );
    assert!(!metrics.contains("FOO") && !metrics.contains("PROPFIND"), "{metrics}");

    let spec: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    assert_eq!(spec["openapi"], "3.1.0");
    for path in
        ["/v1/customers", "/v1/orders", "/v1/events", "/v1/feedback", "/v1/customers/{id}", "/v1/customers/{id}/export"]
    {
        assert!(spec["paths"][path].is_object(), "{path} missing from the spec");
    }
    assert!(spec["components"]["schemas"]["OrderInput"]["properties"]["amount"].is_object());
}

async fn segment_previews_count_and_refuse_bad_expressions_with_their_column(app: App) {
    app.post("/v1/orders", &app.ingest, orders_json()).await;
    let preview = |expression: &str| json!({ "expression": expression }).to_string();
    let (status, body) = app.post("/v1/segments/preview", &app.read, preview("orders >= 2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    assert_eq!(body["sample"][0]["id"], "00042");
    let (_, body) =
        app.post("/v1/segments/preview", &app.read, preview("bought_category(\"coffee\") or revenue < 20")).await;
    assert_eq!(body["count"], 2);

    let (status, body) = app.post("/v1/segments/preview", &app.read, preview("orders >= 2 and")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_expression");
    assert_eq!(body["error"]["column"], 16);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("expected a field")), "{body}");
    for attack in ["orders > 1; DROP TABLE orders", "pg_sleep(5) = 1", "customers.id > 0", "email = 'x' OR '1'='1'"] {
        let (status, body) = app.post("/v1/segments/preview", &app.read, preview(attack)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{attack}: {body}");
    }
    let (status, _) = app.post("/v1/segments/preview", &app.ingest, preview("orders >= 2")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("/v1/segments/preview", &app.read, "{\"expr\": \"orders > 1\"}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.orders().await, 4, "nothing was touched");
}

async fn scores_show_in_the_360_view_and_runs_are_listed(app: App) {
    let (status, body) = app.get("/v1/scores/runs", &app.read).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"runs": []})));
    let (status, _) = app.post("/v1/orders", &app.ingest, orders_json()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = app.get("/v1/customers/00042", &app.read).await;
    assert_eq!((&before["scores"], &before["stage_history"]), (&Value::Null, &json!([])));
    assert_eq!(before["scored_at"], Value::Null);

    // 2024-02-10: four orders are too few for the models; RFM and stages are stored.
    let now = 1_707_523_200_000_000;
    let outcome =
        kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), now).await.expect("scoring");
    let (status, view) = app.get("/v1/customers/00042", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    let scores = &view["scores"];
    assert_eq!(scores["run_id"], outcome.run.id);
    assert_eq!(view["scored_at"], outcome.run.finished_at, "the latest run's time");
    assert_eq!(scores["scored_at"], outcome.run.finished_at);
    assert_eq!((&scores["stage"], &scores["model"]), (&json!("repeat"), &Value::Null), "{scores}");
    assert_eq!(scores["stage_since"], kanta_store::rfc3339(now));
    assert_eq!(
        view["stage_history"],
        json!([{"run_id": outcome.run.id, "time": scores["stage_since"], "from": null, "to": "repeat"}])
    );

    let (status, runs) = app.get("/v1/scores/runs?limit=5", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs["runs"][0]["customers"], 2);
    assert_eq!(runs["runs"][0]["orders"], 4);
    assert!(
        runs["runs"][0]["diagnostics"]["models_skipped"].as_str().is_some_and(|m| m.contains("customers")),
        "{runs}"
    );
    for bad in ["/v1/scores/runs?limit=0", "/v1/scores/runs?limit=101", "/v1/scores/runs?since=1"] {
        let (status, body) = app.get(bad, &app.read).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _) = app.get("/v1/scores/runs", &app.ingest).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn saved_segments_list_members_as_json_or_csv_and_record_transitions(app: App) {
    app.post("/v1/orders", &app.ingest, orders_json()).await;
    let segment = |name: &str, expression: &str| json!({ "name": name, "expression": expression }).to_string();
    let (status, created) = app.post("/v1/segments", &app.admin, segment("repeaters", "orders >= 2")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (&created["name"], &created["expression"], &created["members"]),
        (&json!("repeaters"), &json!("orders >= 2"), &json!(1))
    );
    let id = created["id"].as_i64().expect("an id");

    // Refusals: taken name, bad expression (with its column), bad name, wrong scope, unknown fields.
    let (status, body) = app.post("/v1/segments", &app.admin, segment("repeaters", "orders >= 3")).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("conflict")), "{body}");
    let (status, body) = app.post("/v1/segments", &app.admin, segment("x", "orders >=")).await;
    assert_eq!((status, &body["error"]["column"]), (StatusCode::BAD_REQUEST, &json!(10)), "{body}");
    for name in ["", "   ", "a\nb", &"n".repeat(101)] {
        let (status, body) = app.post("/v1/segments", &app.admin, segment(name, "orders >= 1")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
    }
    let (status, _) = app.post("/v1/segments", &app.read, segment("mine", "orders >= 1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        app.post("/v1/segments", &app.admin, "{\"name\": \"a\", \"expression\": \"orders > 1\", \"x\": 1}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, list) = app.get("/v1/segments", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["segments"], json!([created.clone()]));
    let (status, shown) = app.get(&format!("/v1/segments/{id}"), &app.read).await;
    assert_eq!((status, &shown), (StatusCode::OK, &created));
    for missing in ["/v1/segments/999999", "/v1/segments/abc", "/v1/segments/0/customers"] {
        let (status, body) = app.get(missing, &app.read).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {body}");
    }

    let members = format!("/v1/segments/{id}/customers");
    let (status, page) = app.get(&members, &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["customers"].as_array().map(Vec::len), Some(1));
    assert_eq!((&page["customers"][0]["id"], &page["next_cursor"]), (&json!("00042"), &Value::Null));
    let (status, headers, text) = app.get_text(&members, &app.read, "text/csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("id,email,phone,name,"), "{text}");
    assert!(lines[1].starts_with("00042,"), "{text}");
    for bad in ["?limit=0", "?limit=10001", "?format=xml", "?cursor=zz", "?page=2"] {
        let (status, body) = app.get(&format!("{members}{bad}"), &app.read).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // c7 buys again: a refresh records the entry; pages and transitions follow it.
    let more =
        json!([{"id": "o5", "customer_id": "c7", "time": "2024-03-01T10:00:00Z", "amount": 5, "currency": "EUR"}]);
    app.post("/v1/orders", &app.ingest, more.to_string()).await;
    let (status, _) = app.post(&format!("/v1/segments/{id}/refresh"), &app.read, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, counts) = app.post(&format!("/v1/segments/{id}/refresh"), &app.admin, "").await;
    assert_eq!((status, counts), (StatusCode::OK, json!({"entered": 1, "exited": 0, "members": 2})));
    let (_, first) = app.get(&format!("{members}?limit=1"), &app.read).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, second) = app.get(&format!("{members}?limit=1&cursor={cursor}"), &app.read).await;
    assert_eq!((&first["customers"][0]["id"], &second["customers"][0]["id"]), (&json!("00042"), &json!("c7")));
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, headers, text) = app.get_text(&format!("{members}?format=csv&limit=1"), &app.read, "*/*").await;
    assert_eq!(text.lines().count(), 2);
    assert_eq!(headers["kanta-next-cursor"], cursor.as_str());
    assert_eq!(
        headers["link"],
        format!("</v1/segments/{id}/customers?format=csv&limit=1&cursor={cursor}>; rel=\"next\"").as_str()
    );
    let (status, transitions) = app.get(&format!("/v1/segments/{id}/transitions"), &app.read).await;
    assert_eq!(status, StatusCode::OK);
    let t = &transitions["transitions"];
    assert_eq!(t.as_array().map(Vec::len), Some(1), "{transitions}");
    assert_eq!(
        (&t[0]["customer"], &t[0]["kind"], &t[0]["segment"]),
        (&json!("c7"), &json!("enter"), &json!("repeaters"))
    );

    assert_eq!(app.delete(&format!("/v1/segments/{id}"), &app.read).await, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/v1/segments/{id}"), &app.admin).await, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/v1/segments/{id}"), &app.admin).await, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/v1/segments", &app.read).await;
    assert_eq!(list, json!({"segments": []}));
}

async fn webhook_endpoints_and_the_delivery_log_are_listed_and_paused_ones_resumed(app: App) {
    let (status, body) = app.get("/v1/webhooks", &app.admin).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"endpoints": []})));
    let store = app.store.as_ref();
    store.webhook_endpoint("crm", "http://127.0.0.1:9/hook", 1_000_000).await.expect("an endpoint");
    let event = |n: u32| kanta_store::NewDelivery {
        customer: 1,
        event_id: format!("segment_transition:{n}"),
        event_type: "segment.entered".into(),
        payload: format!("{{\"id\":\"segment_transition:{n}\"}}"),
    };
    store.enqueue_deliveries("crm", 0, 2, &[event(1), event(2)], 2_000_000).await.expect("queued");
    let pending = store.pending_deliveries("crm", 1).await.expect("pending");
    let failed = kanta_store::Attempt {
        delivery: pending[0].id,
        time: 3_000_000,
        status: Some(500),
        error: Some("HTTP 500 Internal Server Error".into()),
        give_up: true,
        failures: 20,
        retry_at: Some(4_000_000),
        pause: Some("20 failed attempts in a row".into()),
    };
    store.record_attempt(&failed).await.expect("recorded");

    // A URL with credentials, as a store written before they were masked may hold it.
    store.webhook_endpoint("old", "https://kanta:hunter2@crm.example.com/h?api_key=k-123&x=1", 0).await.expect("one");
    let (status, body) = app.get("/v1/webhooks", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.to_string().contains("hunter2") && !body.to_string().contains("k-123"), "{body}");
    assert_eq!(body["endpoints"][1]["url"], "https://kanta:***@crm.example.com/h?api_key=***&x=1", "{body}");
    let crm = &body["endpoints"][0];
    assert_eq!(
        (&crm["name"], &crm["pending"], &crm["failed"], &crm["failures"]),
        (&json!("crm"), &json!(1), &json!(1), &json!(20))
    );
    assert_eq!(
        (&crm["paused_at"], &crm["paused_reason"]),
        (&json!("1970-01-01T00:00:03Z"), &json!("20 failed attempts in a row"))
    );
    let (status, log) = app.get("/v1/webhooks/deliveries?endpoint=crm&limit=1", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    let first = &log["deliveries"][0];
    assert_eq!(
        (&first["state"], &first["attempts"], &first["last_status"]),
        (&json!("failed"), &json!(1), &json!(500))
    );
    assert_eq!(first["payload"], "{\"id\":\"segment_transition:1\"}");
    let cursor = log["next_cursor"].as_str().expect("a next page").to_string();
    let (_, rest) = app.get(&format!("/v1/webhooks/deliveries?cursor={cursor}"), &app.admin).await;
    assert_eq!((rest["deliveries"][0]["state"].clone(), rest["next_cursor"].clone()), (json!("pending"), Value::Null));
    for bad in
        ["/v1/webhooks/deliveries?limit=0", "/v1/webhooks/deliveries?cursor=x", "/v1/webhooks/deliveries?state=failed"]
    {
        let (status, body) = app.get(bad, &app.admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for token in [&app.read, &app.ingest] {
        let (status, _) = app.get("/v1/webhooks", token).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    let (status, _) = app.post("/v1/webhooks/crm/resume", &app.read, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("/v1/webhooks/nobody/resume", &app.admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, crm) = app.post("/v1/webhooks/crm/resume?retry_failed=true", &app.admin, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&crm["paused_at"], &crm["failures"], &crm["pending"], &crm["failed"]),
        (&Value::Null, &json!(0), &json!(2), &json!(0))
    );
}

async fn feedback_insights_score_group_and_list_valuable_detractors(app: App) {
    let (status, empty) = app.get("/v1/insights/feedback", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&empty["responses"], &empty["by_month"].as_array().map(Vec::len)), (&json!(0), &Some(12)));
    app.post("/v1/orders", &app.ingest, orders_json()).await;
    let feedback = json!([
        {"id": "f1", "customer_id": "00042", "time": "2024-02-08T10:00:00Z", "nps": 3, "csat": 2,
         "topics": ["delivery"], "text": "late again"},
        {"id": "f2", "customer_id": "c7", "time": "2024-02-09T10:00:00Z", "nps": 10, "topics": ["delivery", "taste"]}
    ]);
    let (status, body) = app.post("/v1/feedback", &app.ingest, feedback.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Scored on 2024-02-10: 00042 (three orders, 59.90) is the top tier, c7 (12.50) mid.
    kanta_jobs::score_store(app.store.as_ref(), &kanta_jobs::ScoreJob::default(), 1_707_523_200_000_000)
        .await
        .expect("scoring");

    let (status, i) = app.get("/v1/insights/feedback?months=3&limit=10", &app.read).await;
    assert_eq!(status, StatusCode::OK, "{i}");
    assert_eq!((&i["responses"], &i["customers"]), (&json!(2), &json!(2)));
    let o = &i["overall"];
    assert_eq!(
        (&o["promoters"], &o["detractors"], &o["nps"], &o["csat"]),
        (&json!(1), &json!(1), &json!(0.0), &json!(2.0))
    );
    assert_eq!(i["by_month"].as_array().map(Vec::len), Some(3));
    let tiers: Vec<&str> =
        i["by_value_tier"].as_array().expect("tiers").iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(tiers, ["top", "mid"]);
    assert_eq!((&i["by_topic"][0]["name"], &i["by_topic"][0]["responses"]), (&json!("delivery"), &json!(2)));
    let call = &i["call_list"];
    assert_eq!(call.as_array().map(Vec::len), Some(1), "{call}");
    assert_eq!(
        (&call[0]["customer"], &call[0]["nps"], &call[0]["text"]),
        (&json!("00042"), &json!(3), &json!("late again"))
    );
    assert_eq!((&call[0]["value_tier"], &call[0]["revenue"]), (&json!("top"), &json!(59.9)));

    for bad in ["?months=0", "?months=121", "?limit=1001", "?since=2024"] {
        let (status, body) = app.get(&format!("/v1/insights/feedback{bad}"), &app.read).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _) = app.get("/v1/insights/feedback", &app.ingest).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// HMAC-SHA256 of `TIMESTAMP.BODY` under the hook secret, hex.
fn hmac_hex(timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(HOOK_SECRET.as_bytes()).expect("a key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    /// The server clock's Unix seconds.
    fn unix_now(&self) -> i64 {
        kanta_domain::Clock::now(self.clock.as_ref()).micros().div_euclid(1_000_000)
    }

    /// The headers of a `crm` hook request signed now: content type, timestamp, signature.
    fn crm_headers(&self, body: &str) -> Vec<(&'static str, String)> {
        let timestamp = self.unix_now().to_string();
        let signature = format!("sha256={}", hmac_hex(&timestamp, body));
        vec![
            ("content-type", "application/json".into()),
            ("x-crm-timestamp", timestamp),
            ("x-signature-256", signature),
        ]
    }

    /// A POST with owned headers.
    async fn post_with(&self, path: &str, headers: &[(&'static str, String)], body: &str) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_raw(path, &headers, body).await
    }
}

async fn inbound_hooks_map_crm_json_onto_customers_and_check_the_sender(app: App) {
    let body = json!({"contacts": [
        {"vid": 901, "properties": {"email": {"value": "ann@example.com"}, "firstname": {"value": "Ann"},
         "lifecyclestage": {"value": "customer"}, "email_optin": {"value": "false"}}},
        {"vid": "c-2", "properties": {"email": {"value": null}, "email_optin": {"value": true}}}
    ]})
    .to_string();
    let json_type = ("content-type", "application/json");
    let (status, _) = app.post_raw("/v1/hooks/nope", &[json_type], &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post_raw("/v1/hooks/crm", &[json_type], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no signature");
    let mut forged = app.crm_headers("{}");
    forged[1].1 = app.unix_now().to_string();
    let (status, err) = app.post_with("/v1/hooks/crm", &forged, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a signature of another body");
    assert_eq!(err["error"]["message"], "the signature does not match the timestamp and the body");

    let (status, got) = app.post_with("/v1/hooks/crm", &app.crm_headers(&body), &body).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!((&got["accepted"], &got["created"]), (&json!(2), &json!(2)));
    let (_, ann) = app.get("/v1/customers/901", &app.read).await;
    assert_eq!((&ann["profile"]["email"], &ann["profile"]["name"]), (&json!("ann@example.com"), &json!("Ann")));
    assert_eq!(ann["profile"]["attributes"], json!({"lifecycle": "customer"}));
    assert_eq!(
        (&ann["consent"][0]["status"], &ann["consent"][0]["source"]),
        (&json!("revoked"), &json!("webhook:crm"))
    );
    let (_, c2) = app.get("/v1/customers/c-2", &app.read).await;
    assert_eq!((&c2["profile"]["email"], &c2["consent"][0]["status"]), (&Value::Null, &json!("granted")));
    // Base64 of the HMAC works too (a second later, so not a replay); the same content again
    // changes nothing.
    app.clock.advance(std::time::Duration::from_secs(1));
    let timestamp = app.unix_now().to_string();
    let hex = hmac_hex(&timestamp, &body);
    let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let headers = [json_type, ("x-crm-timestamp", &timestamp), ("x-signature-256", &b64)];
    let (status, got) = app.post_raw("/v1/hooks/crm", &headers, &body).await;
    assert_eq!((status, &got["unchanged"]), (StatusCode::OK, &json!(2)), "{got}");

    // A bad item rejects the whole batch, naming the item, the field and the source path.
    let bad =
        json!({"contacts": [{"vid": 1}, {"properties": {}}, {"vid": 3, "properties": {"email": {"value": "nope"}}}]})
            .to_string();
    let (status, err) = app.post_with("/v1/hooks/crm", &app.crm_headers(&bad), &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let records = err["error"]["records"].as_array().expect("records");
    assert_eq!((&records[0]["index"], &records[0]["field"]), (&json!(1), &json!("id")), "{err}");
    assert!(records[1]["reason"].as_str().is_some_and(|r| r.contains("(from `properties.email.value`)")), "{err}");
    assert!(app.store.customer("1", 0).await.expect("read").is_none(), "nothing was written");

    // Kanta-Signature and token hooks.
    let signed = json!({"customer": {"id": "s-1", "phone": "+358401234567"}}).to_string();
    let header = kanta_webhooks::sign::sign(HOOK_SECRET.as_bytes(), app.unix_now(), signed.as_bytes());
    let (status, got) = app.post_raw("/v1/hooks/signed", &[json_type, ("kanta-signature", &header)], &signed).await;
    assert_eq!((status, &got["created"]), (StatusCode::OK, &json!(1)), "{got}");
    let stale = kanta_webhooks::sign::sign(HOOK_SECRET.as_bytes(), 1_000, signed.as_bytes());
    let (status, err) = app.post_raw("/v1/hooks/signed", &[json_type, ("kanta-signature", &stale)], &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(err["error"]["message"].as_str().is_some_and(|m| m.starts_with("the request is too old")), "{err}");
    let (status, _) = app.post("/v1/hooks/tokened", &app.read, r#"[{"id": "t-1"}]"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, got) = app.post("/v1/hooks/tokened", &app.ingest, r#"[{"id": "t-1"}, {"id": 2}]"#).await;
    assert_eq!((status, &got["created"]), (StatusCode::OK, &json!(2)), "{got}");
    let (status, _) = app.post("/v1/hooks/tokened", &app.ingest, "42").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Issue 16: a captured `hmac-sha256` request granting consent, replayed after a later
/// revocation, must not grant it again.
async fn a_replayed_consent_grant_is_refused_after_a_revocation(app: App) {
    let optin = |value: &str| {
        json!({"contacts": [{"vid": "r-1", "properties": {"email_optin": {"value": value}}}]}).to_string()
    };
    let grant = optin("true");
    let captured = app.crm_headers(&grant);
    let (status, got) = app.post_with("/v1/hooks/crm", &captured, &grant).await;
    assert_eq!((status, &got["created"]), (StatusCode::OK, &json!(1)), "{got}");
    app.clock.advance(std::time::Duration::from_secs(30));
    let revoke = optin("false");
    let (status, got) = app.post_with("/v1/hooks/crm", &app.crm_headers(&revoke), &revoke).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let consent = |record: &Value| (record["consent"][0]["status"].clone(), record["consent_history"].clone());
    let (_, before) = app.get("/v1/customers/r-1", &app.read).await;
    assert_eq!(consent(&before).0, json!("revoked"));

    // The captured grant, byte for byte, inside its window: refused, and consent stays revoked.
    app.clock.advance(std::time::Duration::from_secs(30));
    let (status, err) = app.post_with("/v1/hooks/crm", &captured, &grant).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "replayed");
    // The same MAC in base64, or the timestamp with spaces: still the same request.
    let mut base64ed = captured.clone();
    let hex = captured[2].1.trim_start_matches("sha256=");
    let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
    use base64::Engine as _;
    base64ed[2].1 = base64::engine::general_purpose::STANDARD.encode(raw);
    base64ed[1].1 = format!(" {} ", captured[1].1);
    let (status, _) = app.post_with("/v1/hooks/crm", &base64ed, &grant).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // After the window: too old, never accepted again.
    app.clock.advance(std::time::Duration::from_secs(300));
    let (status, err) = app.post_with("/v1/hooks/crm", &captured, &grant).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert!(err["error"]["message"].as_str().is_some_and(|m| m.starts_with("the request is too old")), "{err}");
    let (_, after) = app.get("/v1/customers/r-1", &app.read).await;
    assert_eq!(consent(&after), consent(&before), "consent stays revoked, with no new history");
}

async fn signed_inbound_requests_need_a_fresh_timestamp_and_count_once(app: App) {
    // The server's clock a day behind the wall clock: the replay record written for a request
    // and the purge that deletes expired ones must both use it (the purge once used the wall
    // clock, which deleted a record at once and let the replay below through, now and then).
    let now = kanta_domain::Clock::now(app.clock.as_ref());
    app.clock.set(kanta_domain::Timestamp::from_micros(now.micros() - 86_400_000_000));
    let body = json!({"contacts": [{"vid": "f-1", "properties": {"firstname": {"value": "Fay"}}}]}).to_string();
    let message = |err: &Value| err["error"]["message"].as_str().unwrap_or_default().to_string();

    // No timestamp header: refused, naming it (even with a signature of the body alone).
    let mut missing = app.crm_headers(&body);
    missing.remove(1);
    missing[1].1 = format!("sha256={}", {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(HOOK_SECRET.as_bytes()).expect("a key");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
    });
    let (status, err) = app.post_with("/v1/hooks/crm", &missing, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&err).starts_with("missing x-crm-timestamp header"), "{err}");
    for bad in ["", "soon", "-5", "1.5e9", "+1700000000"] {
        let mut headers = app.crm_headers(&body);
        headers[1].1 = bad.to_string();
        headers[2].1 = hmac_hex(bad, &body);
        let (status, err) = app.post_with("/v1/hooks/crm", &headers, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(message(&err).contains("x-crm-timestamp"), "{bad}: {err}");
    }

    // Stale and future timestamps: "too old" / "from the future", never "does not match".
    let signed_at = |offset: i64| {
        let timestamp = (app.unix_now() + offset).to_string();
        let signature = hmac_hex(&timestamp, &body);
        vec![
            ("content-type", "application/json".to_string()),
            ("x-crm-timestamp", timestamp),
            ("x-signature-256", signature),
        ]
    };
    let (status, err) = app.post_with("/v1/hooks/crm", &signed_at(-301), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&err).starts_with("the request is too old: its timestamp"), "{err}");
    assert!(message(&err).contains("301 s before"), "{err}");
    let mut forged_stale = signed_at(-301);
    forged_stale[2].1 = hmac_hex("0", "{}");
    let (_, err) = app.post_with("/v1/hooks/crm", &forged_stale, &body).await;
    assert!(message(&err).contains("too old"), "{err}");
    let (status, err) = app.post_with("/v1/hooks/crm", &signed_at(301), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&err).starts_with("the request is from the future"), "{err}");
    assert!(app.store.customer("f-1", 0).await.expect("read").is_none(), "nothing was written");

    // The edge of the window is inside it; the same request a second time is refused, even
    // with every other request in between.
    let edge = signed_at(-300);
    let (status, got) = app.post_with("/v1/hooks/crm", &edge, &body).await;
    assert_eq!((status, &got["created"]), (StatusCode::OK, &json!(1)), "{got}");
    let (status, got) = app.post_with("/v1/hooks/crm", &app.crm_headers(&body), &body).await;
    assert_eq!((status, &got["unchanged"]), (StatusCode::OK, &json!(1)), "a fresh signature of the same body: {got}");
    let (status, err) = app.post_with("/v1/hooks/crm", &edge, &body).await;
    assert_eq!((status, err["error"]["code"].clone()), (StatusCode::CONFLICT, json!("replayed")), "{err}");

    // Kanta-Signature: the same, and extra v1 values do not make a replay new.
    let signed = json!({"customer": {"id": "s-9"}}).to_string();
    let header = kanta_webhooks::sign::sign(HOOK_SECRET.as_bytes(), app.unix_now(), signed.as_bytes());
    let post_signed = |header: String| {
        let signed = signed.clone();
        let app = &app;
        async move {
            app.post_with(
                "/v1/hooks/signed",
                &[("content-type", "application/json".into()), ("kanta-signature", header)],
                &signed,
            )
            .await
        }
    };
    let (status, got) = post_signed(header.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, err) = post_signed(header.clone()).await;
    assert_eq!((status, err["error"]["code"].clone()), (StatusCode::CONFLICT, json!("replayed")));
    let (status, _) = post_signed(format!("{header},v1={}", "0".repeat(64))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.clock.advance(std::time::Duration::from_secs(301));
    let (status, err) = post_signed(header).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&err).starts_with("the request is too old"), "{err}");
    let future = kanta_webhooks::sign::sign(HOOK_SECRET.as_bytes(), app.unix_now() + 400, signed.as_bytes());
    let (_, err) = post_signed(future).await;
    assert!(message(&err).starts_with("the request is from the future"), "{err}");
    let (status, _) = app.post_raw("/v1/hooks/signed", &[("content-type", "application/json")], &signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no signature");
}

async fn a_bounces_hook_fills_the_suppression_list_and_counts_a_signed_report_once(app: App) {
    let body = json!({"events": [
        {"recipient": "Gone@Example.org", "event": "bounce", "provider": "esp-1"},
        {"recipient": "full@example.org", "event": "deferred"},
        {"recipient": "angry@example.org", "event": "spamreport"}
    ]})
    .to_string();
    let signed = |body: &str| {
        let header = kanta_webhooks::sign::sign(HOOK_SECRET.as_bytes(), app.unix_now(), body.as_bytes());
        [("content-type", "application/json".to_owned()), ("kanta-signature", header)]
    };
    let headers = signed(&body);
    let (status, got) = app.post_with("/v1/hooks/esp", &headers, &body).await;
    assert_eq!((status, &got["accepted"]), (StatusCode::OK, &json!(3)), "{got}");
    let suppressed = |address: &'static str| {
        let store = app.store.clone();
        async move { store.is_suppressed(address).await.expect("read") }
    };
    // A hard bounce and a complaint at once; one soft bounce is under the limit of 3.
    assert!(suppressed("gone@example.org").await);
    assert!(suppressed("angry@example.org").await);
    assert!(!suppressed("full@example.org").await);
    // The same signed request again is a replay, and counts no second soft bounce.
    let (status, got) = app.post_with("/v1/hooks/esp", &headers, &body).await;
    assert_eq!((status, &got["error"]["code"]), (StatusCode::CONFLICT, &json!("replayed")), "{got}");
    for n in 0..2 {
        // Two reports, two bodies (the provider's event ids differ), two signatures.
        let soft = json!({"events": [{"recipient": "full@example.org", "event": "soft", "id": n}]}).to_string();
        let (status, _) = app.post_with("/v1/hooks/esp", &signed(&soft), &soft).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(suppressed("full@example.org").await, "the third soft bounce suppresses");
    // Bad items are named with their field; nothing of the batch is recorded.
    let bad = json!({"events": [
        {"recipient": "ok@example.org", "event": "bounce"},
        {"recipient": "not an address", "event": "bounce"},
        {"recipient": "x@example.org", "event": "delivered"}
    ]})
    .to_string();
    let (status, got) = app.post_with("/v1/hooks/esp", &signed(&bad), &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{got}");
    let text = got.to_string();
    assert!(text.contains("not an address") && text.contains("`delivered` is not a hard or soft bounce"), "{text}");
    assert!(!suppressed("ok@example.org").await, "nothing of a rejected batch");
}
