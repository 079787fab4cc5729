//! Journeys over HTTP: applying documents as JSON, listing, showing, pausing and resuming
//! them, their runs; bounces; the unsubscribe pages. On SQLite and on PostgreSQL.

use kanta_domain::Clock;
use kanta_server::testing::TestApp;
use kanta_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| super::App::spawn(db).await;
    journeys_are_applied_as_json_versioned_listed_shown_and_paused,
    bounces_suppress_at_once_or_after_the_soft_limit,
    unsubscribe_links_show_a_page_on_get_and_revoke_consent_on_post,
    documents_carry_their_templates_and_metrics_read_the_journeys_numbers_from_the_store,
    a_journeys_holdout_and_goal_travel_in_its_document_and_its_report_compares_the_arms,
);

const SECRET: &str = "unsubscribe-secret-0123456789";

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
        let text = format!(
            "[email]\nfrom = \"Shop <hello@shop.example>\"\nunsubscribe_secret = \"{SECRET}\"\n\
             [guardrails]\nsoft_bounce_limit = 2\n"
        );
        let parsed = kanta_server::settings::parse(&text).expect("valid settings");
        settings.email = parsed.email;
        settings.guardrails = parsed.guardrails;
        App { server: TestApp::spawn(db, settings).await, client: reqwest::Client::new() }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("a response");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.client.post(format!("{}{path}", self.base)).bearer_auth(token).json(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    /// A page of `/unsubscribe/…`: status, content type, text.
    async fn page(&self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let response = request.send().await.expect("a response");
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (response.status(), kind, response.text().await.expect("a body"))
    }
}

fn welcome(wait: &str) -> Value {
    json!({"name": "welcome", "trigger": {"event": "order.created"}, "steps": [{"wait": wait}, "exit"]})
}

async fn journeys_are_applied_as_json_versioned_listed_shown_and_paused(app: App) {
    let (status, body) = app.post("/v1/journeys", &app.admin, &welcome("1d")).await;
    assert_eq!(
        (status, &body["name"], &body["version"], &body["created"]),
        (StatusCode::CREATED, &json!("welcome"), &json!(1), &json!(true))
    );
    let (status, body) = app.post("/v1/journeys", &app.admin, &welcome("1d")).await;
    assert_eq!((status, &body["version"], &body["created"]), (StatusCode::OK, &json!(1), &json!(false)));
    let (status, body) = app.post("/v1/journeys", &app.admin, &welcome("2d")).await;
    assert_eq!((status, &body["version"]), (StatusCode::CREATED, &json!(2)));

    // Every problem, each with its JSON pointer; nothing applied.
    let broken = json!({"name": "Broken!", "trigger": {"event": "x"}, "steps": [{"wait": "soon"}]});
    let (status, body) = app.post("/v1/journeys", &app.admin, &broken).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_journey")));
    let pointers: Vec<&str> =
        body["error"]["problems"].as_array().expect("problems").iter().filter_map(|p| p["pointer"].as_str()).collect();
    assert!(pointers.contains(&"/name") && pointers.contains(&"/steps/0/wait"), "{body}");
    let (status, _) = app.post("/v1/journeys", &app.read, &welcome("3d")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, list) = app.get("/v1/journeys", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["journeys"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!((&list["journeys"][0]["name"], &list["journeys"][0]["version"]), (&json!("welcome"), &json!(2)));

    let (status, report) = app.get("/v1/journeys/welcome", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    let versions: Vec<i64> =
        report["versions"].as_array().expect("versions").iter().filter_map(|v| v["version"].as_i64()).collect();
    assert_eq!((versions, &report["paused"]), (vec![1, 2], &json!(false)));
    assert_eq!(app.get("/v1/journeys/nope", &app.read).await.0, StatusCode::NOT_FOUND);

    let (status, paused) = app.post("/v1/journeys/welcome/pause", &app.admin, &json!({})).await;
    assert_eq!((status, &paused["paused"]), (StatusCode::OK, &json!(true)));
    assert_eq!(app.get("/v1/journeys/welcome", &app.read).await.1["paused"], json!(true));
    let (status, resumed) = app.post("/v1/journeys/welcome/resume", &app.admin, &json!({})).await;
    assert_eq!((status, &resumed["paused"]), (StatusCode::OK, &json!(false)));
    assert_eq!(app.post("/v1/journeys/nope/pause", &app.admin, &json!({})).await.0, StatusCode::NOT_FOUND);

    // Runs, paged; and the customer 360 lists the customer's runs.
    let (status, _) = app.post("/v1/customers", &app.ingest, &json!([{"id": "c1"}, {"id": "c2"}])).await;
    assert_eq!(status, StatusCode::OK);
    let context = json!({});
    for id in ["c1", "c2"] {
        let customer = app.store.customer_key(id).await.expect("read").expect("the customer");
        let run = kanta_store::journey::NewRun {
            journey: "welcome",
            version: 2,
            customer,
            key: "",
            step: "0",
            // Due tomorrow on the test clock: the server's journey engine leaves them be.
            due_at: Some(app.clock.now().saturating_add(std::time::Duration::from_secs(86_400))),
            wait: None,
            context: &context,
            arm: kanta_store::journey::RunArm::Treatment,
        };
        let rules = kanta_store::journey::EntryRules {
            reentry: kanta_store::journey::Reentry::Once,
            max_active: None,
            once_per_key: false,
        };
        app.store.start_run(&run, &rules, app.clock.now()).await.expect("started");
    }
    let (status, page) = app.get("/v1/journeys/welcome/runs?limit=1", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((page["runs"].as_array().map(Vec::len), &page["runs"][0]["customer"]), (Some(1), &json!("c1")));
    let cursor = page["next_cursor"].as_str().expect("a next page").to_string();
    let (_, page) = app.get(&format!("/v1/journeys/welcome/runs?limit=1&cursor={cursor}"), &app.read).await;
    assert_eq!(&page["runs"][0]["customer"], &json!("c2"));
    assert_eq!(app.get("/v1/journeys/welcome/runs?limit=0", &app.read).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/v1/journeys/nope/runs", &app.read).await.0, StatusCode::NOT_FOUND);
    let (status, view) = app.get("/v1/customers/c1", &app.read).await;
    assert_eq!(status, StatusCode::OK);
    let runs = view["journeys"].as_array().expect("journeys");
    assert_eq!(
        (runs.len(), &runs[0]["journey"], &runs[0]["version"], &runs[0]["status"]),
        (1, &json!("welcome"), &json!(2), &json!("active"))
    );
    assert_eq!(runs[0]["messages"], json!([]));
}

async fn bounces_suppress_at_once_or_after_the_soft_limit(app: App) {
    let bounce = |address: &str, kind: &str| json!({"address": address, "kind": kind, "source": "provider"});
    let (status, body) = app.post("/v1/bounces", &app.ingest, &bounce("Ann@Example.org", "hard")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"address": "ann@example.org", "suppressed": true})));
    assert!(app.store.is_suppressed("ann@example.org").await.expect("read"));
    let (_, body) = app.post("/v1/bounces", &app.ingest, &bounce("bob@example.org", "soft")).await;
    assert_eq!(body["suppressed"], json!(false), "the first of a limit of 2");
    let (_, body) = app.post("/v1/bounces", &app.ingest, &bounce("bob@example.org", "soft")).await;
    assert_eq!(body["suppressed"], json!(true), "the second");
    let (_, body) = app.post("/v1/bounces", &app.ingest, &bounce("cy@example.org", "complaint")).await;
    assert_eq!(body["suppressed"], json!(true));
    let (status, body) = app.post("/v1/bounces", &app.ingest, &bounce("not an address", "hard")).await;
    assert_eq!((status, &body["error"]["records"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("address")));
    let (status, _) = app.post("/v1/bounces", &app.ingest, &bounce("d@example.org", "bounced")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.post("/v1/bounces", &app.read, &bounce("d@example.org", "hard")).await.0, StatusCode::FORBIDDEN);
    assert!(!app.store.is_suppressed("d@example.org").await.expect("read"));
}

async fn unsubscribe_links_show_a_page_on_get_and_revoke_consent_on_post(app: App) {
    let grant = json!([{"id": "c1", "email": "ann@example.org", "consent": [{"channel": "email", "status": "granted", "source": "checkout"}]},
                       {"id": "c2", "email": "bob@example.org", "consent": [{"channel": "email", "status": "granted"}]}]);
    assert_eq!(app.post("/v1/customers", &app.ingest, &grant).await.0, StatusCode::OK);
    let key = kanta_mail::UnsubscribeKey::new(SECRET.as_bytes()).expect("a key");
    let link = |customer: &str| {
        let token = key.sign(customer, kanta_mail::Channel::Email, app.clock.now());
        format!("{}/unsubscribe/{token}", app.base)
    };
    let consent = async |id: &str| {
        let (_, view) = app.get(&format!("/v1/customers/{id}"), &app.read).await;
        (
            view["consent"][0]["status"].clone(),
            view["consent"][0]["source"].clone(),
            view["consent_history"].as_array().map_or(0, Vec::len),
        )
    };

    // A GET (a mail scanner, a preview) shows the page and changes nothing.
    let (status, kind, text) = app.page(app.client.get(link("c1"))).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    assert!(text.contains("<form method=\"post\">") && text.contains("Unsubscribe from marketing email"), "{text}");
    assert!(!text.contains("c1") && !text.contains("ann@"), "the page names nobody: {text}");
    assert_eq!(consent("c1").await, (json!("granted"), json!("checkout"), 1));

    // The page's button.
    let (status, _, text) = app.page(app.client.post(link("c1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("You are unsubscribed"), "{text}");
    assert_eq!(consent("c1").await, (json!("revoked"), json!("unsubscribe_page"), 2));

    // RFC 8058 one-click, as a mail client sends it.
    let one_click = app
        .client
        .post(link("c2"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click");
    assert_eq!(app.page(one_click).await.0, StatusCode::OK);
    assert_eq!(consent("c2").await, (json!("revoked"), json!("list_unsubscribe_one_click"), 2));

    // A tampered or foreign token: the same 400 page, nothing changes.
    let good = link("c1");
    let tampered = good.replace("/unsubscribe/", "/unsubscribe/x");
    let forged = format!(
        "{}/unsubscribe/{}",
        app.base,
        kanta_mail::UnsubscribeKey::new(b"another-secret-0123456789").expect("a key").sign(
            "c1",
            kanta_mail::Channel::Email,
            app.clock.now()
        )
    );
    for url in [tampered, forged, format!("{}/unsubscribe/nonsense", app.base)] {
        let (status, kind, text) = app.page(app.client.post(&url).body("List-Unsubscribe=One-Click")).await;
        assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "text/html; charset=utf-8"), "{url}");
        assert!(text.contains("This link is not valid"), "{text}");
        assert_eq!(app.page(app.client.get(&url)).await.0, StatusCode::BAD_REQUEST);
    }
    assert_eq!(consent("c1").await.2, 2);
    // An erased (or unknown) customer's link gets the same answer and records nothing.
    assert_eq!(app.page(app.client.post(link("nobody"))).await.0, StatusCode::OK);
    assert_eq!(app.get("/v1/customers/nobody", &app.read).await.0, StatusCode::NOT_FOUND);
}

async fn documents_carry_their_templates_and_metrics_read_the_journeys_numbers_from_the_store(app: App) {
    let note = |templates: Value| {
        json!({"name": "note", "trigger": {"event": "signup"},
               "steps": [{"send_email": {"subject": "Note", "template": "note"}}, {"wait": "1d"}],
               "templates": templates})
    };
    // The server has no templates folder: a template must travel in the document.
    let (status, body) = app.post("/v1/journeys", &app.admin, &note(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["problems"],
        json!([{"pointer": "/steps/0/send_email/template",
                "message": "there is no template `note` (templates/note.html, or `templates.note` embedded)"}])
    );
    let (status, body) =
        app.post("/v1/journeys", &app.admin, &note(json!({"note": {"html": "<p>\n{{ custmer.name }}</p>"}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["problems"][0]["pointer"], json!("/templates/note/html"));
    let message = body["error"]["problems"][0]["message"].as_str().expect("a message");
    assert!(message.starts_with("this template cannot be rendered: line 2: unknown name `custmer`"), "{message}");

    let one = note(json!({"note": {"html": "<p>One {{ customer.name }}</p>", "text": "One"}}));
    let (status, body) = app.post("/v1/journeys", &app.admin, &one).await;
    assert_eq!((status, &body["version"]), (StatusCode::CREATED, &json!(1)), "{body}");
    assert_eq!(app.post("/v1/journeys", &app.admin, &one).await.0, StatusCode::OK, "unchanged");
    // Only the template's text changed: a new version.
    let two = note(json!({"note": {"html": "<p>Two {{ customer.name }}</p>", "text": "Two"}}));
    let (status, body) = app.post("/v1/journeys", &app.admin, &two).await;
    assert_eq!((status, &body["version"]), (StatusCode::CREATED, &json!(2)), "{body}");
    let (status, v1) = app.get("/v1/journeys/note/versions/1", &app.read).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(v1["document"]["templates"], json!({"note": {"html": "<p>One {{ customer.name }}</p>", "text": "One"}}));
    assert_eq!(
        app.get("/v1/journeys/note/versions/2", &app.read).await.1["document"]["templates"]["note"]["text"],
        "Two"
    );
    assert_eq!(app.get("/v1/journeys/note/versions/3", &app.read).await.0, StatusCode::NOT_FOUND);

    // Metrics: rows written through the store, read back from it. The journey is paused so
    // that no engine of the server claims its messages meanwhile.
    assert_eq!(app.post("/v1/journeys/note/pause", &app.admin, &json!({})).await.0, StatusCode::OK);
    let (status, _) = app.post("/v1/customers", &app.ingest, &json!([{"id": "c1", "email": "c1@example.org"}])).await;
    assert_eq!(status, StatusCode::OK);
    let customer = app.store.customer_key("c1").await.expect("read").expect("the customer");
    let now = app.clock.now();
    let context = json!({});
    let run = kanta_store::journey::NewRun {
        journey: "note",
        version: 2,
        customer,
        key: "",
        step: "1",
        due_at: Some(now.saturating_add(std::time::Duration::from_secs(86_400))),
        wait: None,
        context: &context,
        arm: kanta_store::journey::RunArm::Treatment,
    };
    let rules = kanta_store::journey::EntryRules {
        reentry: kanta_store::journey::Reentry::Always,
        max_active: None,
        once_per_key: false,
    };
    let kanta_store::journey::Entered::Started(run) = app.store.start_run(&run, &rules, now).await.expect("started")
    else {
        panic!("not started")
    };
    for (i, due) in [(1, now), (2, now.saturating_add(std::time::Duration::from_secs(3_600)))] {
        let message = kanta_store::journey::NewMessage {
            step: "0".into(),
            occurrence: i,
            channel: kanta_store::journey::Channel::Email,
            transactional: false,
            recipient: "c1@example.org".into(),
            payload: "{}".into(),
            message_id: format!("<m-{i}@kanta.test>"),
            not_before: due,
            skip: None,
        };
        app.store.enqueue_message(run, &message, now).await.expect("enqueue").expect("new");
    }
    app.clock.advance(std::time::Duration::from_secs(90));
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
    for line in [
        "kanta_journey_messages{journey=\"note\",step=\"0\",status=\"pending\"} 2",
        "kanta_journey_outbox_depth 2",
        "kanta_journey_outbox_due 1",
        "kanta_journey_oldest_due_seconds 90",
        "kanta_journey_messages_in_doubt 0",
        "kanta_journey_active_runs{journey=\"note\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

async fn a_journeys_holdout_and_goal_travel_in_its_document_and_its_report_compares_the_arms(app: App) {
    let promo = json!({"name": "promo", "trigger": {"event": "signup"}, "holdout": "50%",
        "goal": {"event": "order.created", "within": "30d", "exit": true},
        "steps": [{"send_email": {"subject": "Hi", "html": "<p>Hi</p>"}}]});
    let (status, body) = app.post("/v1/journeys", &app.admin, &promo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, v1) = app.get("/v1/journeys/promo/versions/1", &app.read).await;
    assert_eq!(v1["document"]["holdout"], "50%");
    assert_eq!(v1["document"]["goal"], json!({"event": "order.created", "exit": true, "within": "30d"}));
    let mut no_goal = promo.clone();
    no_goal.as_object_mut().expect("an object").remove("goal");
    let (status, body) = app.post("/v1/journeys", &app.admin, &no_goal).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["problems"][0]["pointer"], "/holdout");

    // Nobody has entered yet: nothing to compare.
    let (status, report) = app.get("/v1/journeys/promo/report", &app.read).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((&report["holdout"], &report["goal"]), (&json!("50%"), &json!("event order.created within 30d")));
    assert_eq!((&report["treatment"]["customers"], &report["conversion"]), (&json!(0), &Value::Null));

    // Two customers per arm entered 40 days ago (paused, so the server's engine leaves them be);
    // one treated customer converted the next day.
    assert_eq!(app.post("/v1/journeys/promo/pause", &app.admin, &json!({})).await.0, StatusCode::OK);
    let ids = ["t1", "t2", "k1", "k2"];
    let customers: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    assert_eq!(app.post("/v1/customers", &app.ingest, &json!(customers)).await.0, StatusCode::OK);
    crate::enter_promo_arms(&app, "0", &ids).await;
    let (status, report) = app.get("/v1/journeys/promo/report?seed=7&resamples=500", &app.read).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["treatment"]["conversions"], 1);
    assert_eq!((&report["control"]["matured"], &report["control"]["conversions"]), (&json!(2), &json!(0)));
    assert_eq!(report["conversion"]["difference"], 0.5);
    assert_eq!(report["settings"]["bootstrap"], json!({"resamples": 500, "seed": 7}));
    assert_eq!(report["entries"], json!([["control", 2], ["treatment", 2]]));

    for query in ["resamples=5", "seed=soon", "bogus=1"] {
        let (status, body) = app.get(&format!("/v1/journeys/promo/report?{query}"), &app.read).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    assert_eq!(app.get("/v1/journeys/nope/report", &app.read).await.0, StatusCode::NOT_FOUND);
}
