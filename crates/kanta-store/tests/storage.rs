//! The storage suite: every test runs against SQLite and against PostgreSQL (a fresh database on
//! the server `scripts/with-postgres` starts), through the same `Storage` trait object.

use kanta_store::record::{Batch, Record, parse_batch};
use kanta_store::testing::TestDb;
use kanta_store::{
    Customer, Event, Feedback, ModelScores, NewScoreRun, Order, Purchases, Scope, ScoreRow, Secret, StoredResponse,
    WriteCounts,
};

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    orders_create_customers_and_reposting_changes_nothing,
    an_order_posted_again_with_changes_is_replaced_with_its_lines,
    the_last_record_wins_when_a_batch_names_an_id_twice,
    customer_fields_merge_and_attributes_follow_rfc_7396,
    consent_is_kept_as_history_with_the_latest_per_channel_current,
    a_signed_write_is_accepted_once_until_its_signature_expires,
    events_are_stored_once_per_id,
    feedback_is_created_and_replaced_by_id,
    the_360_view_holds_everything_in_order,
    cursor_pagination_visits_every_customer_once,
    erasure_removes_personal_data_and_keeps_anonymous_orders,
    erasure_leaves_no_personal_data_in_the_database_files_or_rows,
    tokens_are_found_by_hash_and_idempotent_responses_keep_the_first,
    idempotent_responses_expire_and_are_deleted,
    sql_looking_values_are_stored_verbatim,
    segments_select_the_same_customers_on_both_backends,
    purchases_come_in_chunks_with_refunds_negative_and_cancellations_left_out,
    scores_replace_the_previous_run_and_record_stage_changes,
    saved_segments_record_who_enters_and_leaves,
    webhook_deliveries_queue_once_and_record_attempts_and_pauses,
    feedback_facts_carry_scores_net_revenue_and_last_purchase,
    score_floats_and_texts_round_trip_exactly,
    segment_queries_stop_at_their_budget_and_leave_the_store_usable,
    a_batch_that_would_take_a_customers_totals_past_the_limit_writes_nothing,
    the_purchase_rule_in_sql_agrees_with_the_rust_predicate,
);

const NOW: i64 = 1_730_000_000_000_000;

fn checked<T: Record + std::fmt::Debug>(json: &str) -> Vec<T> {
    let Batch { valid, rejected } =
        parse_batch::<T>(json.as_bytes(), kanta_domain::TimeRange::ALL).expect("a JSON array");
    assert!(rejected.is_empty(), "{rejected:?}");
    valid.into_iter().map(|(_, r)| r).collect()
}

fn counts(created: u64, updated: u64, unchanged: u64, customers_created: u64) -> WriteCounts {
    WriteCounts { created, updated, unchanged, customers_created }
}

const ORDERS: &str = r#"[
  {"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
   "lines":[{"product":"beans","category":"coffee","quantity":2,"price":"9.95"}]},
  {"id":"o2","customer_id":"00042","time":"2024-02-05T10:00:00Z","amount":30,"currency":"EUR"},
  {"id":"o3","customer_id":"c7","time":"2024-02-06T10:00:00+02:00","amount":12.5,"currency":"EUR"}
]"#;

async fn orders_create_customers_and_reposting_changes_nothing(db: TestDb) {
    let orders: Vec<Order> = checked(ORDERS);
    let first = db.store.write_orders(&orders, NOW).await.expect("write");
    assert_eq!(first, counts(3, 0, 0, 2));
    let again = db.store.write_orders(&orders, NOW + 1).await.expect("write");
    assert_eq!(again, counts(0, 0, 3, 0));
    let c = db.store.counts().await.expect("counts");
    assert_eq!((c.customers, c.orders), (2, 3));
    let facts = db.store.order_facts().await.expect("facts");
    let summary: Vec<(&str, &str, i64, i64)> =
        facts.iter().map(|f| (f.customer.as_str(), f.order.as_str(), f.time, f.amount)).collect();
    assert_eq!(
        summary,
        [
            ("00042", "o1", 1_704_448_800_000_000, 199_000),
            ("00042", "o2", 1_707_127_200_000_000, 300_000),
            ("c7", "o3", 1_707_206_400_000_000, 125_000),
        ]
    );
}

async fn an_order_posted_again_with_changes_is_replaced_with_its_lines(db: TestDb) {
    db.store.write_orders(&checked::<Order>(ORDERS), NOW).await.expect("write");
    let changed: Vec<Order> = checked(
        r#"[{"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
             "status":"refunded","lines":[{"product":"beans","quantity":1,"price":"19.90"}]},
            {"id":"o2","customer_id":"00042","time":"2024-02-05T10:00:00Z","amount":30,"currency":"EUR"}]"#,
    );
    assert_eq!(db.store.write_orders(&changed, NOW).await.expect("write"), counts(0, 1, 1, 0));
    // Only the lines changed: still an update.
    let lines_only: Vec<Order> = checked(
        r#"[{"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
             "status":"refunded","lines":[{"product":"beans","quantity":1,"price":"19.90"},
                                          {"product":"mug","quantity":1,"price":0}]}]"#,
    );
    assert_eq!(db.store.write_orders(&lines_only, NOW).await.expect("write"), counts(0, 1, 0, 0));
    let record = db.store.customer("00042", 10).await.expect("read").expect("exists");
    let o1 = &record.orders[0];
    assert_eq!((o1.id.as_str(), o1.status.as_str(), o1.amount), ("o1", "refunded", 19.9));
    let products: Vec<(&str, f64)> = o1.lines.iter().map(|l| (l.product.as_str(), l.quantity)).collect();
    assert_eq!(products, [("beans", 1.0), ("mug", 1.0)]);
}

async fn the_last_record_wins_when_a_batch_names_an_id_twice(db: TestDb) {
    let orders: Vec<Order> = checked(
        r#"[{"id":"o1","customer_id":"a","time":"2024-01-05T10:00:00Z","amount":1,"currency":"EUR"},
            {"id":"o1","customer_id":"a","time":"2024-01-05T10:00:00Z","amount":2,"currency":"EUR"}]"#,
    );
    assert_eq!(db.store.write_orders(&orders, NOW).await.expect("write"), counts(1, 0, 0, 1));
    let facts = db.store.order_facts().await.expect("facts");
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].amount, 20_000);
}

async fn customer_fields_merge_and_attributes_follow_rfc_7396(db: TestDb) {
    let first: Vec<Customer> = checked(
        r#"[{"id":"c1","email":"anna@example.fi","name":"Anna","attributes":{"tier":"gold","pets":{"cat":1},"x":1}}]"#,
    );
    assert_eq!(db.store.write_customers(&first, NOW).await.expect("write"), counts(1, 0, 0, 0));
    assert_eq!(db.store.write_customers(&first, NOW).await.expect("write"), counts(0, 0, 1, 0));
    let patch: Vec<Customer> =
        checked(r#"[{"id":"c1","phone":"+358401234567","attributes":{"pets":{"dog":2},"x":null,"vip":true}}]"#);
    assert_eq!(db.store.write_customers(&patch, NOW + 5).await.expect("write"), counts(0, 1, 0, 0));
    let p = db.store.customer("c1", 0).await.expect("read").expect("exists").profile;
    assert_eq!(p.email.as_deref(), Some("anna@example.fi"), "absent fields keep their value");
    assert_eq!(p.phone.as_deref(), Some("+358401234567"));
    assert_eq!(p.name.as_deref(), Some("Anna"));
    assert_eq!(p.attributes, Some(serde_json::json!({"tier":"gold","pets":{"cat":1,"dog":2},"vip":true})));
    assert_eq!(p.created_at, "2024-10-27T03:33:20Z");
    assert_eq!(p.updated_at, "2024-10-27T03:33:20.000005Z");
}

async fn consent_is_kept_as_history_with_the_latest_per_channel_current(db: TestDb) {
    let batch: Vec<Customer> = checked(
        r#"[{"id":"c1","consent":[
              {"channel":"email","status":"granted","source":"checkout","time":"2024-01-01T00:00:00Z"},
              {"channel":"sms","status":"granted","time":"2024-01-02T00:00:00Z"}]}]"#,
    );
    db.store.write_customers(&batch, NOW).await.expect("write");
    let revoke: Vec<Customer> = checked(
        r#"[{"id":"c1","consent":[{"channel":"email","status":"revoked","source":"unsubscribe","time":"2024-03-01T00:00:00Z"}]}]"#,
    );
    db.store.write_customers(&revoke, NOW).await.expect("write");
    db.store.write_customers(&revoke, NOW).await.expect("re-post is a no-op");
    let record = db.store.customer("c1", 0).await.expect("read").expect("exists");
    let history: Vec<(&str, &str)> =
        record.consent_history.iter().map(|c| (c.channel.as_str(), c.status.as_str())).collect();
    assert_eq!(history, [("email", "granted"), ("sms", "granted"), ("email", "revoked")]);
    let current: Vec<(&str, &str, Option<&str>)> =
        record.consent.iter().map(|c| (c.channel.as_str(), c.status.as_str(), c.source.as_deref())).collect();
    assert_eq!(current, [("email", "revoked", Some("unsubscribe")), ("sms", "granted", None)]);
}

async fn a_signed_write_is_accepted_once_until_its_signature_expires(db: TestDb) {
    let grant: Vec<Customer> = checked(r#"[{"id":"c1","consent":[{"channel":"email","status":"granted"}]}]"#);
    let seen = |hook: &str, digest: &str| kanta_store::SeenSignature {
        hook: hook.into(),
        digest: digest.into(),
        expires_at: NOW + 300_000_000,
    };
    let first = db.store.write_customers_once(&seen("crm", "aa"), &grant, NOW).await.expect("write");
    assert_eq!(first, Some(counts(1, 0, 0, 0)));
    let revoke: Vec<Customer> = checked(r#"[{"id":"c1","consent":[{"channel":"email","status":"revoked"}]}]"#);
    db.store.write_customers(&revoke, NOW + 10_000_000).await.expect("write");
    // The same signature again, later but inside its window: refused, nothing written.
    let replay = db.store.write_customers_once(&seen("crm", "aa"), &grant, NOW + 20_000_000).await.expect("write");
    assert_eq!(replay, None);
    let record = db.store.customer("c1", 0).await.expect("read").expect("exists");
    assert_eq!(record.consent_history.len(), 2);
    assert_eq!(record.consent[0].status, "revoked");
    // Another hook's signature with the same digest is another request.
    let other = db.store.write_customers_once(&seen("shop", "aa"), &[], NOW + 20_000_000).await.expect("write");
    assert_eq!(other, Some(WriteCounts::default()));
    // Once expired, the row is purged (the API refuses the stale timestamp before it gets here).
    let later = db.store.write_customers_once(&seen("crm", "aa"), &[], NOW + 300_000_000).await.expect("write");
    assert_eq!(later, Some(WriteCounts::default()));
}

async fn events_are_stored_once_per_id(db: TestDb) {
    let events: Vec<Event> = checked(
        r#"[{"id":"e1","customer_id":"c1","name":"login","time":"2024-01-01T00:00:00Z"},
            {"customer_id":"c1","name":"page_view","time":"2024-01-01T00:01:00Z","properties":{"path":"/coffee"}}]"#,
    );
    assert_eq!(db.store.write_events(&events, NOW).await.expect("write"), counts(2, 0, 0, 1));
    assert_eq!(db.store.write_events(&events, NOW).await.expect("write"), counts(0, 0, 2, 0));
    let record = db.store.customer("c1", 1).await.expect("read").expect("exists");
    assert_eq!(record.events.len(), 1, "limited to the most recent");
    assert_eq!(record.events[0].name, "page_view");
    assert_eq!(record.events[0].properties, Some(serde_json::json!({"path":"/coffee"})));
}

async fn feedback_is_created_and_replaced_by_id(db: TestDb) {
    let fb: Vec<Feedback> = checked(
        r#"[{"id":"f1","customer_id":"c1","time":"2024-01-01T00:00:00Z","nps":3,"text":"late delivery",
             "topics":["Delivery"],"channel":"email","order_id":"o1"}]"#,
    );
    assert_eq!(db.store.write_feedback(&fb, NOW).await.expect("write"), counts(1, 0, 0, 1));
    assert_eq!(db.store.write_feedback(&fb, NOW).await.expect("write"), counts(0, 0, 1, 0));
    let fixed: Vec<Feedback> = checked(
        r#"[{"id":"f1","customer_id":"c1","time":"2024-01-01T00:00:00Z","nps":4,"text":"late delivery",
             "topics":["delivery","price"],"channel":"email","order_id":"o1"}]"#,
    );
    assert_eq!(db.store.write_feedback(&fixed, NOW).await.expect("write"), counts(0, 1, 0, 0));
    let record = db.store.customer("c1", 0).await.expect("read").expect("exists");
    let f = &record.feedback[0];
    assert_eq!(
        (f.nps, f.topics.clone(), f.order_id.as_deref()),
        (Some(4), vec!["delivery".into(), "price".into()], Some("o1"))
    );
}

async fn the_360_view_holds_everything_in_order(db: TestDb) {
    db.store.write_orders(&checked::<Order>(ORDERS), NOW).await.expect("write");
    let record = db.store.customer("00042", 10).await.expect("read").expect("exists");
    assert_eq!(record.profile.id, "00042");
    let orders: Vec<(&str, &str, f64)> =
        record.orders.iter().map(|o| (o.id.as_str(), o.time.as_str(), o.amount)).collect();
    assert_eq!(orders, [("o1", "2024-01-05T10:00:00Z", 19.9), ("o2", "2024-02-05T10:00:00Z", 30.0)]);
    let line = &record.orders[0].lines[0];
    assert_eq!(
        (line.product.as_str(), line.category.as_deref(), line.quantity, line.price),
        ("beans", Some("coffee"), 2.0, 9.95)
    );
    assert!(db.store.customer("42", 10).await.expect("read").is_none(), "ids are exact strings");
}

async fn cursor_pagination_visits_every_customer_once(db: TestDb) {
    let json: Vec<String> = (0..23).map(|i| format!(r#"{{"id":"c{i:02}"}}"#)).collect();
    db.store.write_customers(&checked::<Customer>(&format!("[{}]", json.join(","))), NOW).await.expect("write");
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = db.store.list_customers(cursor, 10).await.expect("list");
        pages += 1;
        seen.extend(page.into_iter().map(|p| p.id));
        // A customer created while paging appears on a later page, never shifts earlier ones.
        if pages == 1 {
            db.store.write_customers(&checked::<Customer>(r#"[{"id":"late"}]"#), NOW).await.expect("write");
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = (0..23).map(|i| format!("c{i:02}")).collect();
    expected.push("late".into());
    assert_eq!(seen, expected);
}

async fn erasure_removes_personal_data_and_keeps_anonymous_orders(db: TestDb) {
    db.store.write_orders(&checked::<Order>(ORDERS), NOW).await.expect("write");
    let profile: Vec<Customer> = checked(
        r#"[{"id":"00042","email":"anna@example.fi","name":"Anna","attributes":{"a":1},
             "consent":[{"channel":"email","status":"granted"}]}]"#,
    );
    db.store.write_customers(&profile, NOW).await.expect("write");
    db.store
        .write_events(
            &checked::<Event>(r#"[{"customer_id":"00042","name":"login","time":"2024-01-01T00:00:00Z"}]"#),
            NOW,
        )
        .await
        .expect("write");
    db.store
        .write_feedback(
            &checked::<Feedback>(
                r#"[{"id":"f1","customer_id":"00042","time":"2024-01-01T00:00:00Z","nps":9,"text":"I am Anna"}]"#,
            ),
            NOW,
        )
        .await
        .expect("write");
    let revenue_before: i64 = db.store.order_facts().await.expect("facts").iter().map(|f| f.amount).sum();

    db.store.audit(Some(7), "export", Some("00042"), NOW).await.expect("audit");
    assert!(db.store.erase_customer("00042", Some(7), NOW + 1).await.expect("erase"));
    assert!(!db.store.erase_customer("00042", None, NOW).await.expect("erase"), "the id is gone");
    assert!(db.store.customer("00042", 10).await.expect("read").is_none());

    let facts = db.store.order_facts().await.expect("facts");
    assert_eq!(facts.iter().map(|f| f.amount).sum::<i64>(), revenue_before, "aggregates unchanged");
    let anonymous = facts.iter().find(|f| f.order == "o1").expect("order kept").customer.clone();
    assert!(anonymous.starts_with("erased:"), "{anonymous}");
    let record = db.store.customer(&anonymous, 10).await.expect("read").expect("anonymous customer");
    let p = &record.profile;
    assert_eq!((p.email.clone(), p.name.clone(), p.attributes.clone()), (None, None, None));
    assert!(p.erased_at.is_some());
    assert!(record.consent_history.is_empty() && record.events.is_empty());
    assert_eq!((record.feedback[0].nps, record.feedback[0].text.clone()), (Some(9), None));
    assert_eq!(record.orders.len(), 2);

    let (log, next) = db.store.audit_entries(None, 10).await.expect("audit log");
    let entries: Vec<(&str, Option<&str>, Option<i64>)> =
        log.iter().map(|e| (e.action.as_str(), e.customer.as_deref(), e.token_id)).collect();
    assert_eq!(entries, [("export", Some(anonymous.as_str()), Some(7)), ("erase", Some(anonymous.as_str()), Some(7))]);
    assert_eq!(next, None);
    let (first, next) = db.store.audit_entries(None, 1).await.expect("audit log");
    assert_eq!((first.len(), next), (1, Some(log[0].id)));
}

/// What the erasure test stores about the customer it erases, each distinctive enough that a
/// byte search finds nothing else.
const ZEB_ID: &str = "zeb-id-5417";
const ZEB_EMAIL: &str = "zebulon.quartermaine.7731@example.org";
const ZEB_PHONE: &str = "+358407731918";
const ZEB_NAME: &str = "Zebulon Quartermaine";
const ZEB_IP: &str = "203.0.113.177";

async fn erasure_leaves_no_personal_data_in_the_database_files_or_rows(db: TestDb) {
    let customers: Vec<Customer> = checked(&format!(
        r#"[{{"id":"{ZEB_ID}","email":"{ZEB_EMAIL}","phone":"{ZEB_PHONE}","name":"{ZEB_NAME}",
             "attributes":{{"nick":"{ZEB_NAME}"}},"consent":[{{"channel":"sms","status":"granted"}}]}},
           {{"id":"keeper-8812","email":"keeper.8812@example.org","name":"Keeper Kept"}}]"#
    ));
    // A segment of every buyer, saved before the order, so the order makes a transition.
    let expr = kanta_segment::parse("revenue >= 1").expect("valid");
    let seg = db.store.create_segment("buyers", "revenue >= 1", &expr, NOW).await.expect("create");
    db.store.write_customers(&customers, NOW).await.expect("write");
    let order = format!(
        r#"[{{"id":"zo1","customer_id":"{ZEB_ID}","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR"}}]"#
    );
    db.store.write_orders(&checked::<Order>(&order), NOW).await.expect("write");
    let event = format!(
        r#"[{{"customer_id":"{ZEB_ID}","name":"login","time":"2024-01-01T00:00:00Z","properties":{{"ip":"{ZEB_IP}"}}}}]"#
    );
    db.store.write_events(&checked::<Event>(&event), NOW).await.expect("write");
    let feedback = format!(
        r#"[{{"id":"zf1","customer_id":"{ZEB_ID}","time":"2024-01-02T00:00:00Z","nps":3,
             "text":"This is {ZEB_NAME}, call me on {ZEB_PHONE}"}}]"#
    );
    db.store.write_feedback(&checked::<Feedback>(&feedback), NOW).await.expect("write");
    db.store.refresh_segment(seg.id, &expr, NOW + 1).await.expect("refresh");
    let (moved, _) = db.store.transitions(None, None, 10).await.expect("transitions");
    let zeb = moved.iter().find(|t| t.customer == ZEB_ID).expect("zeb entered").customer_key;

    // What was written so far now sits in the database file (SQLite), the rest in the WAL.
    db.checkpoint().await.expect("checkpoint");

    // A webhook body with the contact fields, delivered.
    let crm = db.store.webhook_endpoint("crm", "http://127.0.0.1:9/hook", NOW).await.expect("endpoint");
    let payload = serde_json::json!({"customer": ZEB_ID, "profile": {"email": ZEB_EMAIL, "name": ZEB_NAME}});
    let delivery = kanta_store::NewDelivery {
        customer: zeb,
        event_id: "evt-zeb-1".into(),
        event_type: "segment.entered".into(),
        payload: payload.to_string(),
    };
    db.store.enqueue_deliveries("crm", crm.stage_cursor, moved[0].id, &[delivery], NOW).await.expect("enqueue");
    let sent = db.store.pending_deliveries("crm", 10).await.expect("pending");
    let attempt = kanta_store::Attempt {
        delivery: sent[0].id,
        time: NOW + 2,
        status: Some(200),
        error: None,
        give_up: false,
        failures: 0,
        retry_at: None,
        pause: None,
    };
    db.store.record_attempt(&attempt).await.expect("attempt");

    // Stored idempotent responses quoting the customer (a partial batch's rejections).
    let secret = Secret::generate().expect("randomness");
    let token = db.store.insert_token(&secret.hash(), Scope::Ingest, None, NOW).await.expect("token");
    let quoting = StoredResponse {
        request_hash: "h".into(),
        status: 200,
        body: format!(
            r#"{{"rejected":[{{"index":1,"field":"name","reason":"a control character: `{ZEB_NAME}\u0007`"}}]}}"#
        ),
    };
    let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let remember = |key: &'static str, response: StoredResponse, customers: Vec<String>| {
        let store = db.store.clone();
        async move { store.remember_response(token, key, &response, &customers, NOW, 0).await.expect("remember") }
    };
    // Tied to the customer by the request's ids (nothing else finds a quoted name)…
    remember("zeb-key", quoting.clone(), ids(&["other-1", ZEB_ID])).await;
    // …or not (a record whose id could not be read, or remembered before the ties existed):
    // found by the contact fields it quotes.
    let untied = StoredResponse {
        body: format!(r#"{{"reason":"`{ZEB_EMAIL} ` / `{ZEB_PHONE}x` are not…"}}"#),
        ..quoting.clone()
    };
    remember("untied-key", untied, Vec::new()).await;
    // Another customer's response stays.
    let other = StoredResponse { body: r#"{"created":1}"#.into(), ..quoting };
    remember("other-key", other.clone(), ids(&["other-1"])).await;
    db.store.audit(None, "export", Some(ZEB_ID), NOW + 3).await.expect("audit");

    let needles = [ZEB_EMAIL, ZEB_PHONE, ZEB_NAME, ZEB_IP, ZEB_ID];
    let before = db.stored(&needles).await.expect("stored text");
    for needle in needles {
        assert!(before.iter().any(|(n, _)| n == needle), "{needle} is stored before the erasure: {before:?}");
    }

    assert!(db.store.erase_customer(ZEB_ID, None, NOW + 4).await.expect("erase"));
    let left = db.stored(&needles).await.expect("stored text");
    assert!(left.is_empty(), "personal data left after the erasure: {left:#?}");
    for (key, kept) in [("zeb-key", None), ("untied-key", None), ("other-key", Some(other))] {
        assert_eq!(db.store.idempotent_response(token, key, 0).await.expect("read"), kept, "{key}");
    }
    // The search does find what is still there: the other customer.
    let kept = db.stored(&["keeper.8812@example.org", "Keeper Kept"]).await.expect("stored text");
    assert_eq!(kept.iter().map(|(n, _)| n.as_str()).collect::<std::collections::BTreeSet<_>>().len(), 2, "{kept:?}");
}

async fn tokens_are_found_by_hash_and_idempotent_responses_keep_the_first(db: TestDb) {
    let secret = Secret::generate().expect("randomness");
    let id = db.store.insert_token(&secret.hash(), Scope::Ingest, Some("shop"), NOW).await.expect("insert");
    let found = db.store.find_token(&secret.hash()).await.expect("find").expect("present");
    assert_eq!((found.id, found.scope), (id, Scope::Ingest));
    assert!(found.hash.ct_eq(&secret.hash()));
    assert!(db.store.find_token(&kanta_store::TokenHash::of("kanta_wrong")).await.expect("find").is_none());
    let listed = db.store.list_tokens().await.expect("list");
    assert_eq!((listed[0].id, listed[0].scope, listed[0].name.as_deref()), (id, Scope::Ingest, Some("shop")));

    let first = StoredResponse { request_hash: "h1".into(), status: 200, body: "{\"created\":1}".into() };
    let second = StoredResponse { request_hash: "h2".into(), status: 422, body: "{}".into() };
    assert!(db.store.idempotent_response(id, "k1", 0).await.expect("read").is_none());
    db.store.remember_response(id, "k1", &first, &[], NOW, 0).await.expect("remember");
    db.store.remember_response(id, "k1", &second, &[], NOW, 0).await.expect("remember");
    assert_eq!(db.store.idempotent_response(id, "k1", 0).await.expect("read"), Some(first));

    assert!(db.store.revoke_token(id, NOW).await.expect("revoke"));
    assert!(!db.store.revoke_token(id, NOW).await.expect("revoke"), "already revoked");
    assert!(db.store.find_token(&secret.hash()).await.expect("find").is_none(), "a revoked token is refused");
    assert!(db.store.list_tokens().await.expect("list")[0].revoked_at.is_some());
}

async fn idempotent_responses_expire_and_are_deleted(db: TestDb) {
    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;
    let secret = Secret::generate().expect("randomness");
    let token = db.store.insert_token(&secret.hash(), Scope::Ingest, None, NOW).await.expect("insert");
    let response = |body: &str| StoredResponse { request_hash: "h".into(), status: 200, body: body.into() };
    let old = response(r#"{"created":1}"#);
    let young = response(r#"{"created":2}"#);
    db.store.remember_response(token, "old", &old, &["c1".into()], NOW, NOW - DAY).await.expect("remember");
    db.store
        .remember_response(token, "young", &young, &[], NOW + 2 * HOUR, NOW + 2 * HOUR - DAY)
        .await
        .expect("remember");

    // 25 hours on, the old one is no longer replayed (it is older than the day allowed)…
    let now = NOW + 25 * HOUR;
    assert_eq!(db.store.idempotent_response(token, "old", now - DAY).await.expect("read"), None);
    assert_eq!(db.store.idempotent_response(token, "young", now - DAY).await.expect("read"), Some(young.clone()));
    // …and the next response remembered deletes it; a new response under its key is stored.
    let again = response(r#"{"unchanged":1}"#);
    db.store.remember_response(token, "old", &again, &[], now, now - DAY).await.expect("remember");
    assert_eq!(db.store.idempotent_response(token, "old", 0).await.expect("read"), Some(again));
    assert_eq!(db.store.expire_responses(now - DAY).await.expect("expire"), 0, "nothing else expired");
    // The purge on its own deletes what expired since, and only that.
    assert_eq!(db.store.expire_responses(NOW + 3 * HOUR).await.expect("expire"), 1);
    assert_eq!(db.store.idempotent_response(token, "young", 0).await.expect("read"), None);
    assert!(db.store.idempotent_response(token, "old", 0).await.expect("read").is_some());
    // Once the WAL is checkpointed (SQLite does so on its own), the bytes are gone too.
    db.checkpoint().await.expect("checkpoint");
    assert_eq!(db.stored(&[r#"{"created":1}"#]).await.expect("stored text"), [], "the expired body is gone");
}

async fn sql_looking_values_are_stored_verbatim(db: TestDb) {
    let nasty = r#"x'); DROP TABLE customers; --"#;
    let json = serde_json::json!([{
        "id": nasty, "customer_id": nasty, "time": "2024-01-01T00:00:00Z", "amount": 1, "currency": "EUR",
        "lines": [{"product": "' OR 1=1 --", "category": "\"; DELETE FROM orders", "quantity": 1, "price": 1}]
    }]);
    db.store.write_orders(&checked::<Order>(&json.to_string()), NOW).await.expect("write");
    let record = db.store.customer(nasty, 10).await.expect("read").expect("exists");
    assert_eq!(record.orders[0].id, nasty);
    assert_eq!(record.orders[0].lines[0].product, "' OR 1=1 --");
    assert_eq!(db.store.counts().await.expect("counts").orders, 1);
}

async fn segments_select_the_same_customers_on_both_backends(db: TestDb) {
    // NOW is 2024-10-27; days are counted back from it.
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"a1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR",
       "lines":[{"product":"espresso","category":"coffee","quantity":1,"price":300}]},
      {"id":"a2","customer_id":"ann","time":"2024-09-01T10:00:00Z","amount":"250","currency":"EUR",
       "lines":[{"product":"grinder-x","category":"grinders","quantity":1,"price":250}]},
      {"id":"b1","customer_id":"bob","time":"2024-05-01T10:00:00Z","amount":"40","currency":"EUR",
       "lines":[{"product":"espresso","category":"coffee","quantity":1,"price":40}]},
      {"id":"b2","customer_id":"bob","time":"2024-04-01T10:00:00Z","amount":"60","currency":"EUR","status":"refunded"},
      {"id":"c1","customer_id":"cy","time":"2024-10-25T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("write");
    let customers: Vec<Customer> = checked(
        r#"[{"id":"ann","email":"ann@example.fi","attributes":{"tier":"gold","visits":12},
             "consent":[{"channel":"email","status":"granted","time":"2024-01-01T00:00:00Z"}]},
            {"id":"bob","attributes":{"tier":"silver","visits":"many"},
             "consent":[{"channel":"email","status":"granted","time":"2024-01-01T00:00:00Z"},
                        {"channel":"email","status":"revoked","time":"2024-02-01T00:00:00Z"}]},
            {"id":"dee","attributes":{"vip":true}}]"#,
    );
    db.store.write_customers(&customers, NOW).await.expect("write");
    let events: Vec<Event> = checked(
        r#"[{"customer_id":"bob","name":"login","time":"2024-10-26T00:00:00Z"},
            {"customer_id":"dee","name":"login","time":"2024-01-01T00:00:00Z"}]"#,
    );
    db.store.write_events(&events, NOW).await.expect("write");

    let cases: &[(&str, &[&str])] = &[
        ("orders >= 2", &["ann"]),
        ("orders = 1", &["bob", "cy"]),
        ("revenue > 500", &["ann"]),
        ("average_order_value < 50", &["bob", "cy"]),
        ("days_since_last_order > 60", &["bob"]),
        ("not (days_since_last_order > 60)", &["ann", "cy", "dee"]),
        ("bought_category(\"coffee\") and not bought_category(\"grinders\")", &["bob"]),
        ("bought_product(\"espresso\")", &["ann", "bob"]),
        ("orders_in_last(30d) >= 1", &["ann", "cy"]),
        ("revenue_in_last(8w) > 400", &["ann"]),
        ("consent.email", &["ann"]),
        ("not consent.email", &["bob", "cy", "dee"]),
        ("attributes.tier = \"gold\"", &["ann"]),
        ("attributes.tier in (\"gold\", \"silver\")", &["ann", "bob"]),
        ("attributes.visits > 10", &["ann"]),
        ("attributes.vip", &["dee"]),
        ("did_event(\"login\") and events_in_last(\"login\", 7d) = 0", &["dee"]),
        ("email = \"ann@example.fi\" or orders = 0", &["ann", "dee"]),
    ];
    for (text, want) in cases {
        let expr = kanta_segment::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let (members, next) =
            db.store.segment_members(&expr, NOW, None, 100).await.unwrap_or_else(|e| panic!("{text}: {e}"));
        let ids: Vec<&str> = members.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, *want, "{text}");
        assert_eq!(next, None);
        assert_eq!(db.store.segment_count(&expr, NOW).await.expect("count"), want.len() as i64, "{text}");
    }
    // Paging through a segment.
    let expr = kanta_segment::parse("orders >= 0").expect("valid");
    let (page, next) = db.store.segment_members(&expr, NOW, None, 2).await.expect("page");
    assert_eq!((page.len(), next.is_some()), (2, true));
    let (rest, next) = db.store.segment_members(&expr, NOW, next, 2).await.expect("page");
    assert_eq!((rest.len(), next), (2, None));
}

/// Every purchase the store hands the scoring job, in one list.
async fn all_purchases(db: &TestDb) -> (Purchases, usize) {
    let mut all = Purchases::default();
    let mut chunks = 0;
    db.store
        .purchases(false, &mut |c| {
            chunks += 1;
            assert!(c.lines.is_empty(), "lines only when asked for");
            all.customer.extend(c.customer);
            all.time.extend(c.time);
            all.amount.extend(c.amount);
        })
        .await
        .expect("purchases");
    (all, chunks)
}

async fn purchases_come_in_chunks_with_refunds_negative_and_cancellations_left_out(db: TestDb) {
    assert_eq!(all_purchases(&db).await, (Purchases::default(), 0));
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"p1","customer_id":"ann","time":"2024-10-20T10:00:00.9Z","amount":"300","currency":"EUR",
       "lines":[{"product":"x","category":"coffee, dark","quantity":1,"price":"200"},
                {"product":"y","category":"  \"mugs\" ü\t','","quantity":1,"price":"100"},
                {"product":"z","quantity":1,"price":"0"}]},
      {"id":"p2","customer_id":"bob","time":"1969-12-31T23:59:59.5Z","amount":"40","currency":"EUR",
       "lines":[{"product":"x","category":"tea","quantity":1,"price":"40"}]},
      {"id":"p3","customer_id":"ann","time":"2024-10-21T10:00:00Z","amount":"60","currency":"EUR","status":"refunded"},
      {"id":"p4","customer_id":"bob","time":"2024-10-22T10:00:00Z","amount":"10","currency":"EUR","status":"cancelled"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("write");
    let (p, chunks) = all_purchases(&db).await;
    assert_eq!(chunks, 1);
    // Times floor to whole seconds, also before 1970.
    assert_eq!(p.time, [1_729_418_400, -1, 1_729_504_800]);
    assert_eq!(p.amount, [3_000_000, 400_000, -600_000]);
    assert_eq!((p.customer[0] == p.customer[2], p.customer[0] != p.customer[1]), (true, true));
    // The categories of purchase lines, with their customer and time (lines without a category
    // and lines of refunded or cancelled orders are left out), text exactly as stored.
    let (ann, bob) = (p.customer[0], p.customer[1]);
    let mut categories = all_categories(&db).await;
    categories.sort();
    assert_eq!(
        categories,
        [
            (ann, 1_729_418_400, "  \"mugs\" ü\t','".to_string()),
            (ann, 1_729_418_400, "coffee, dark".to_string()),
            (bob, -1, "tea".to_string())
        ]
    );

    // More than one chunk (65,536 order ids each): every order once.
    let many: Vec<Order> = (0..70_000)
        .map(|i| {
            // Every seventh order has a line with a category naming the order.
            let lines = if i % 7 == 0 {
                format!(r#","lines":[{{"product":"p","category":"k{i}","quantity":1,"price":"1"}}]"#)
            } else {
                String::new()
            };
            let json = format!(
                r#"{{"id":"m{i}","customer_id":"c{}","time":"2024-01-01T00:00:00Z","amount":"{}.5","currency":"EUR"{lines}}}"#,
                i % 1000,
                i + 1
            );
            kanta_store::record::parse_value::<Order>(serde_json::from_str(&json).expect("json"), kanta_domain::TimeRange::ALL).expect("valid")
        })
        .collect();
    for batch in many.chunks(10_000) {
        db.store.write_orders(batch, NOW).await.expect("write");
    }
    let (p, chunks) = all_purchases(&db).await;
    assert_eq!((chunks, p.amount.len()), (2, 70_003));
    let mut amounts: Vec<(i64, i64)> = p.amount.iter().copied().zip(p.customer.iter().copied()).collect();
    amounts.sort_unstable();
    let by_customer: std::collections::HashMap<i64, usize> =
        amounts.iter().fold(Default::default(), |mut m, &(_, c)| {
            *m.entry(c).or_default() += 1;
            m
        });
    let many: Vec<i64> = amounts.iter().map(|a| a.0).filter(|&a| a % 10_000 == 5_000).collect();
    // Not printed on failure: 70,000 numbers.
    assert!(many.iter().copied().eq((1..=70_000).map(|a| a * 10_000 + 5_000)), "some amounts are missing or repeated");
    // Columns stay aligned: customer c{k} has the orders m{k}, m{k+1000}, … (70 each).
    assert_eq!(by_customer.values().filter(|&&n| n == 70).count(), 1000);

    // Categories across chunks: one per seventh order, each with its order's customer.
    let categories = all_categories(&db).await;
    assert_eq!(categories.len(), 3 + 10_000);
    let customer_of: std::collections::HashMap<i64, i64> =
        p.amount.iter().copied().zip(p.customer.iter().copied()).collect();
    for (customer, time, category) in categories.iter().filter(|c| c.2.starts_with('k')) {
        let i: i64 = category[1..].parse().expect("k{i}");
        assert_eq!(i % 7, 0, "{category}");
        assert_eq!((customer_of[&((i + 1) * 10_000 + 5_000)], *time), (*customer, 1_704_067_200), "{category}");
    }
}

/// Every (customer, time in seconds, category) the store hands the scoring job, and that the
/// purchases read with their lines are the ones read without.
async fn all_categories(db: &TestDb) -> Vec<(i64, i64, String)> {
    let mut all = Vec::new();
    let mut with_lines = Purchases::default();
    db.store
        .purchases(true, &mut |c| {
            for (i, category) in c.lines.iter() {
                all.push((c.customer[i], c.time[i], category.to_owned()));
            }
            with_lines.customer.extend(c.customer);
            with_lines.time.extend(c.time);
            with_lines.amount.extend(c.amount);
        })
        .await
        .expect("purchases with lines");
    assert_eq!(with_lines, all_purchases(db).await.0);
    all
}

fn score_row(customer: i64, stage: &'static str, p_alive: f64) -> ScoreRow {
    ScoreRow {
        customer,
        r: 5,
        f: 3,
        m: 1,
        rfm_segment: "Champions",
        stage,
        value_tier: if p_alive > 0.8 { "top" } else { "mid" },
        main_category: Some("coffee".into()),
        next_category: (p_alive < 0.5).then(|| "grinders".to_string()),
        model: Some(ModelScores {
            p_alive,
            expected_30d: 0.5,
            expected_90d: 1.25,
            expected_365d: 4.0,
            p_purchase_30d: 0.375,
            expected_spend: Some(42.5),
            clv_12m: Some(p_alive * 1000.0),
            next_purchase_at: Some(NOW + 86_400_000_000 * 10),
        }),
    }
}

fn run(at: i64) -> NewScoreRun {
    NewScoreRun {
        started_at: at,
        finished_at: at + 1_000_000,
        as_of: "2024-10-27".into(),
        orders: 3,
        model: Some("bgnbd".into()),
        diagnostics: serde_json::json!({"models": {"chosen": "bgnbd", "params": [0.25, 4.5]}}),
    }
}

async fn scores_replace_the_previous_run_and_record_stage_changes(db: TestDb) {
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"s1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"s2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"},
      {"id":"s3","customer_id":"cy","time":"2024-10-22T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("write");
    let (p, _) = all_purchases(&db).await;
    let (ann, bob, cy) = (p.customer[0], p.customer[1], p.customer[2]);
    assert!(db.store.customer("ann", 10).await.expect("read").expect("ann").scores.is_none());

    let day = 86_400_000_000;
    let first = db
        .store
        .write_scores(&run(NOW), &[score_row(ann, "loyal", 0.9), score_row(bob, "new", 0.6), score_row(cy, "new", 0.5)])
        .await
        .expect("first run");
    assert_eq!((first.customers, first.orders, first.stage_changes), (3, 3, 3));
    let mut unscored = score_row(bob, "new", 0.55);
    unscored.model = None;
    let second =
        db.store.write_scores(&run(NOW + day), &[score_row(ann, "slipping", 0.3), unscored]).await.expect("second run");
    assert_eq!((second.id > first.id, second.customers, second.stage_changes), (true, 2, 1));

    let a = db.store.customer("ann", 10).await.expect("read").expect("ann");
    let scores = a.scores.expect("scored");
    assert_eq!((scores.run_id, scores.stage.as_str(), scores.r, scores.f, scores.m), (second.id, "slipping", 5, 3, 1));
    assert_eq!(scores.stage_since, kanta_store::rfc3339(NOW + day));
    assert_eq!(scores.value_tier.as_deref(), Some("mid"));
    assert_eq!((scores.main_category.as_deref(), scores.next_category.as_deref()), (Some("coffee"), Some("grinders")));
    let model = scores.model.expect("model scores");
    assert_eq!((model.p_alive, model.clv_12m, model.expected_spend), (0.3, Some(300.0), Some(42.5)));
    let history: Vec<(Option<&str>, &str)> =
        a.stage_history.iter().map(|c| (c.from.as_deref(), c.to.as_str())).collect();
    assert_eq!(history, [(Some("loyal"), "slipping"), (None, "loyal")]);
    let view = serde_json::to_value(model).expect("json");
    assert_eq!(view["next_purchase"], kanta_store::rfc3339(NOW + 10 * day).as_str());

    // An unchanged stage keeps its start; missing model scores stay missing.
    let b = db.store.customer("bob", 10).await.expect("read").expect("bob").scores.expect("scored");
    assert_eq!((b.stage.as_str(), b.stage_since, b.model), ("new", kanta_store::rfc3339(NOW), None));
    // A customer the latest run did not score has no scores.
    assert!(db.store.customer("cy", 10).await.expect("read").expect("cy").scores.is_none());

    let runs = db.store.score_runs(10).await.expect("runs");
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [second.id, first.id]);
    assert_eq!(runs[0].diagnostics["models"]["params"][1], 4.5);
    assert_eq!(runs[0].model.as_deref(), Some("bgnbd"));

    // The segment language reads the scores.
    for (text, want) in [
        ("stage = \"slipping\"", 1),
        ("p_alive < 0.5", 1),
        ("clv_12m >= 300 and rfm_segment = \"Champions\"", 1),
        ("not p_alive < 0.5", 2),
        ("days_in_stage >= 0 and r_score = 5", 2),
        ("days_to_next_purchase > 8.5", 1),
        ("expected_purchases_365d = 4 and expected_spend = 42.5", 1),
        ("value_tier = \"mid\"", 2),
        ("value_tier in (\"top\", \"high\")", 0),
        ("main_category = \"coffee\" and next_category = \"grinders\"", 1),
    ] {
        let expr = kanta_segment::parse(text).expect("valid");
        assert_eq!(db.store.segment_count(&expr, NOW + day).await.expect("count"), want, "{text}");
    }
}

async fn saved_segments_record_who_enters_and_leaves(db: TestDb) {
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"g1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"g2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"},
      {"id":"g3","customer_id":"cy","time":"2024-10-22T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("write");
    let text = "revenue >= 40";
    let expr = kanta_segment::parse(text).expect("valid");
    let seg = db.store.create_segment("big spenders", text, &expr, NOW).await.expect("create");
    assert_eq!((seg.name.as_str(), seg.expression.as_str(), seg.members), ("big spenders", text, 2));
    // The first membership is a baseline: nobody "entered".
    assert_eq!(db.store.transitions(Some(seg.id), None, 10).await.expect("transitions").0, []);
    let err = db.store.create_segment("big spenders", "orders > 0", &expr, NOW).await.expect_err("taken");
    assert!(matches!(err, kanta_store::StoreError::Conflict(_)), "{err}");

    // cy buys more (enters), ann's order is refunded (leaves).
    let changes: Vec<Order> = checked(
        r#"[
      {"id":"g1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR","status":"refunded"},
      {"id":"g4","customer_id":"cy","time":"2024-10-23T10:00:00Z","amount":"50","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&changes, NOW).await.expect("write");
    let counts = db.store.refresh_segment(seg.id, &expr, NOW + 5).await.expect("refresh");
    assert_eq!((counts.entered, counts.exited, counts.members), (1, 1, 2));
    let (page, next) = db.store.transitions(Some(seg.id), None, 1).await.expect("transitions");
    assert_eq!(
        (page[0].customer.as_str(), page[0].kind.as_str(), page[0].segment.as_str()),
        ("cy", "enter", "big spenders")
    );
    assert_eq!(page[0].time, kanta_store::rfc3339(NOW + 5));
    let (rest, end) = db.store.transitions(None, next, 10).await.expect("transitions");
    let rest: Vec<(&str, &str)> = rest.iter().map(|t| (t.customer.as_str(), t.kind.as_str())).collect();
    assert_eq!((rest, end), (vec![("ann", "exit")], None));
    // Nothing changed: nothing recorded.
    let again = db.store.refresh_segment(seg.id, &expr, NOW + 6).await.expect("refresh");
    assert_eq!((again.entered, again.exited, again.members), (0, 0, 2));

    let (members, next) = db.store.segment_customers(seg.id, None, 1).await.expect("members");
    let (more, end) = db.store.segment_customers(seg.id, next, 1).await.expect("members");
    let ids: Vec<&str> = members.iter().chain(&more).map(|p| p.id.as_str()).collect();
    assert_eq!((ids, end), (vec!["bob", "cy"], None));
    let info = db.store.segment(seg.id).await.expect("read").expect("exists");
    assert_eq!((info.members, info.refreshed_at), (2, kanta_store::rfc3339(NOW + 6)));

    // An erased customer leaves every segment.
    assert!(db.store.erase_customer("bob", None, NOW + 7).await.expect("erase"));
    let after = db.store.refresh_segment(seg.id, &expr, NOW + 8).await.expect("refresh");
    assert_eq!((after.exited, after.members), (1, 1));

    assert_eq!(db.store.segments().await.expect("list").len(), 1);
    assert!(db.store.delete_segment(seg.id).await.expect("delete"));
    assert!(!db.store.delete_segment(seg.id).await.expect("delete"));
    assert_eq!(db.store.segment(seg.id).await.expect("read"), None);
    assert_eq!(db.store.transitions(None, None, 10).await.expect("transitions").0, []);
}

async fn webhook_deliveries_queue_once_and_record_attempts_and_pauses(db: TestDb) {
    use kanta_store::{Attempt, NewDelivery};
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"w1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"w2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("write");
    // Transitions recorded before an endpoint exists are history it does not get.
    let expr = kanta_segment::parse("revenue >= 100").expect("valid");
    let seg = db.store.create_segment("big", "revenue >= 100", &expr, NOW).await.expect("create");
    let more: Vec<Order> =
        checked(r#"[{"id":"w3","customer_id":"bob","time":"2024-10-22T10:00:00Z","amount":"80","currency":"EUR"}]"#);
    db.store.write_orders(&more, NOW).await.expect("write");
    db.store.refresh_segment(seg.id, &expr, NOW + 1).await.expect("refresh");
    let (old, _) = db.store.transitions(None, None, 10).await.expect("transitions");
    assert_eq!(old.len(), 1);

    let crm = db.store.webhook_endpoint("crm", "http://127.0.0.1:9/hook", NOW).await.expect("endpoint");
    assert_eq!((crm.stage_cursor, crm.transition_cursor, crm.failures, crm.pending), (0, old[0].id, 0, 0));
    let again = db.store.webhook_endpoint("crm", "http://127.0.0.1:10/hook", NOW + 9).await.expect("endpoint");
    assert_eq!(
        (again.url.as_str(), again.transition_cursor),
        ("http://127.0.0.1:10/hook", old[0].id),
        "URL follows the config"
    );

    // Deleting the segment deletes its transitions; a new transition must not reuse their ids
    // (the endpoint's cursor is past them).
    assert!(db.store.delete_segment(seg.id).await.expect("delete"));
    let seg = db.store.create_segment("big2", "revenue >= 100", &expr, NOW + 2).await.expect("create");
    let refund: Vec<Order> = checked(
        r#"[{"id":"w1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR","status":"refunded"}]"#,
    );
    db.store.write_orders(&refund, NOW).await.expect("write");
    db.store.refresh_segment(seg.id, &expr, NOW + 3).await.expect("refresh");
    let (new, _) = db.store.transitions(None, Some(again.transition_cursor), 10).await.expect("transitions");
    assert_eq!(new.iter().map(|t| (t.customer.as_str(), t.kind.as_str())).collect::<Vec<_>>(), [("ann", "exit")]);
    assert!(new[0].id > old[0].id, "ids are never reused");

    let ann = new[0].customer_key;
    let delivery = |n: u32| NewDelivery {
        customer: ann,
        event_id: format!("segment_transition:{n}"),
        event_type: "segment.exited".into(),
        payload: format!("{{\"n\":{n}}}"),
    };
    let queued =
        db.store.enqueue_deliveries("crm", 0, new[0].id, &[delivery(1), delivery(2)], NOW + 4).await.expect("queue");
    assert_eq!(queued, 2);
    let requeued =
        db.store.enqueue_deliveries("crm", 0, new[0].id, &[delivery(2), delivery(3)], NOW + 5).await.expect("queue");
    assert_eq!(requeued, 1, "an event already queued is skipped");
    let pending = db.store.pending_deliveries("crm", 10).await.expect("pending");
    let ids: Vec<&str> = pending.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(ids, ["segment_transition:1", "segment_transition:2", "segment_transition:3"]);
    assert_eq!(
        (pending[0].payload.as_str(), pending[0].state.as_str(), pending[0].attempts),
        ("{\"n\":1}", "pending", 0)
    );
    assert_eq!(pending[0].created_at, NOW + 4);

    // A failure keeps it pending and backs the endpoint off; a success delivers it; giving up
    // fails it; a pause is recorded with its reason.
    let attempt = |delivery: i64, time: i64, status: Option<u16>, error: Option<&str>| Attempt {
        delivery,
        time,
        status,
        error: error.map(str::to_string),
        give_up: false,
        failures: 0,
        retry_at: None,
        pause: None,
    };
    db.store
        .record_attempt(&Attempt {
            failures: 1,
            retry_at: Some(NOW + 100),
            ..attempt(pending[0].id, NOW + 10, Some(500), Some("HTTP 500"))
        })
        .await
        .expect("attempt");
    let crm = &db.store.webhook_endpoints().await.expect("endpoints")[0];
    assert_eq!((crm.failures, crm.retry_at, crm.pending, crm.paused_at), (1, Some(NOW + 100), 3, None));
    db.store.record_attempt(&attempt(pending[0].id, NOW + 100, Some(204), None)).await.expect("attempt");
    db.store
        .record_attempt(&Attempt {
            give_up: true,
            failures: 3,
            retry_at: Some(NOW + 300),
            pause: Some("3 failures in a row".into()),
            ..attempt(pending[1].id, NOW + 200, None, Some("timed out"))
        })
        .await
        .expect("attempt");
    let crm = &db.store.webhook_endpoints().await.expect("endpoints")[0];
    assert_eq!((crm.pending, crm.delivered, crm.failed, crm.failures), (1, 1, 1, 3));
    assert_eq!((crm.paused_at, crm.paused_reason.as_deref()), (Some(NOW + 200), Some("3 failures in a row")));
    let (log, next) = db.store.deliveries(Some("crm"), None, 2).await.expect("log");
    assert_eq!(
        log.iter().map(|d| (d.state.as_str(), d.attempts, d.last_status, d.last_error.as_deref())).collect::<Vec<_>>(),
        [("delivered", 2, Some(204), None), ("failed", 1, None, Some("timed out"))]
    );
    assert_eq!(
        (log[0].delivered_at, log[0].last_attempt_at, log[1].delivered_at),
        (Some(NOW + 100), Some(NOW + 100), None)
    );
    let (rest, end) = db.store.deliveries(None, next, 10).await.expect("log");
    assert_eq!((rest.len(), end), (1, None));
    assert_eq!(db.store.deliveries(Some("other"), None, 10).await.expect("log").0, []);

    // Resuming clears the pause and backoff and, when asked, queues failed deliveries again.
    assert!(!db.store.resume_webhook("nobody", true).await.expect("resume"));
    assert!(db.store.resume_webhook("crm", true).await.expect("resume"));
    let crm = &db.store.webhook_endpoints().await.expect("endpoints")[0];
    assert_eq!((crm.failures, crm.retry_at, crm.paused_at, crm.pending, crm.failed), (0, None, None, 2, 0));
    let pending = db.store.pending_deliveries("crm", 1).await.expect("pending");
    assert_eq!((pending[0].event_id.as_str(), pending[0].attempts), ("segment_transition:2", 0));

    // The bodies name ann and carry her contact fields: erasing her redacts every one, and
    // what was not sent is never sent.
    let contexts = db.store.customer_contexts(&[ann, ann + 1000]).await.expect("contexts");
    assert_eq!(contexts.len(), 1, "unknown ids are left out");
    assert!(db.store.erase_customer("ann", None, NOW + 400).await.expect("erase"));
    assert_eq!(db.store.customer_contexts(&[ann]).await.expect("contexts"), [], "erased customers have no context");
    let (log, _) = db.store.deliveries(Some("crm"), None, 10).await.expect("log");
    assert!(log.iter().all(|d| d.payload == kanta_store::webhook::ERASED_BODY), "{log:?}");
    let states: Vec<(&str, Option<&str>)> = log.iter().map(|d| (d.state.as_str(), d.last_error.as_deref())).collect();
    assert_eq!(
        states,
        [("delivered", None), ("failed", Some("the customer was erased")), ("failed", Some("the customer was erased"))]
    );
    assert_eq!(db.store.pending_deliveries("crm", 10).await.expect("pending"), []);
}

async fn feedback_facts_carry_scores_net_revenue_and_last_purchase(db: TestDb) {
    let customers: Vec<Customer> =
        checked(r#"[{"id":"ann","name":"Ann","email":"ann@example.com"},{"id":"zed","email":"zed@example.com"}]"#);
    db.store.write_customers(&customers, NOW).await.expect("customers");
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"h1","customer_id":"ann","time":"2024-10-01T10:00:00Z","amount":"120.50","currency":"EUR"},
      {"id":"h2","customer_id":"ann","time":"2024-10-05T10:00:00Z","amount":"20","currency":"EUR","status":"refunded"},
      {"id":"h3","customer_id":"ann","time":"2024-10-09T10:00:00Z","amount":"99","currency":"EUR","status":"cancelled"},
      {"id":"h4","customer_id":"bob","time":"2024-10-02T10:00:00Z","amount":"15","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, NOW).await.expect("orders");
    let feedback: Vec<Feedback> = checked(
        r#"[
      {"id":"q2","customer_id":"ann","time":"2024-10-08T00:00:00Z","nps":4,"csat":2,"topics":["Delivery"],"text":"late"},
      {"id":"q1","customer_id":"ann","time":"2024-10-03T00:00:00Z","nps":9},
      {"id":"q3","customer_id":"cy","time":"2024-10-04T00:00:00Z","csat":5},
      {"id":"q4","customer_id":"zed","time":"2024-10-04T00:00:00Z","nps":0}
    ]"#,
    );
    db.store.write_feedback(&feedback, NOW).await.expect("feedback");
    let (p, _) = all_purchases(&db).await;
    let ann = p.customer[0];
    db.store.write_scores(&run(NOW), &[score_row(ann, "slipping", 0.9)]).await.expect("scores");
    assert!(db.store.erase_customer("zed", None, NOW).await.expect("erase"));

    let (responses, facts) = db.store.feedback_facts().await.expect("facts");
    // Customers who responded, erased ones left out; bob gave no feedback.
    let ids: Vec<&str> = facts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["ann", "cy"]);
    let a = &facts[0];
    assert_eq!((a.name.as_deref(), a.email.as_deref()), (Some("Ann"), Some("ann@example.com")));
    assert_eq!(
        (a.stage.as_deref(), a.value_tier.as_deref(), a.clv_12m, a.p_alive),
        (Some("slipping"), Some("top"), Some(900.0), Some(0.9))
    );
    // 120.50 bought, 20 refunded, the cancelled order ignored.
    assert_eq!(a.revenue, 100.5);
    assert_eq!(a.last_purchase, Some(1_727_776_800), "2024-10-01T10:00:00Z: refunds are not purchases");
    let c = &facts[1];
    assert_eq!((c.stage.as_deref(), c.revenue, c.last_purchase), (None, 0.0, None));
    type Row<'a> = (usize, i64, Option<u8>, Option<u8>, Vec<String>, Option<&'a str>);
    let got: Vec<Row> =
        responses.iter().map(|r| (r.customer, r.time, r.nps, r.csat, r.topics.clone(), r.text.as_deref())).collect();
    assert_eq!(
        got,
        [
            (0, 1_727_913_600, Some(9), None, vec![], None),
            (0, 1_728_345_600, Some(4), Some(2), vec!["delivery".to_string()], Some("late")),
            (1, 1_728_000_000, None, Some(5), vec![], None),
        ]
    );
}

async fn score_floats_and_texts_round_trip_exactly(db: TestDb) {
    // Every float must come back bit for bit and every text unchanged, whatever it holds
    // (a guard for any faster write path: a JSON text per chunk was tried and is 4× slower on
    // SQLite, whose `->>` re-parses each row's text once per column).
    let orders: Vec<String> = (0..64)
        .map(|i| {
            format!(
                r#"{{"id":"x{i}","customer_id":"k{i:02}","time":"2024-10-01T10:00:00Z","amount":"1","currency":"EUR"}}"#
            )
        })
        .collect();
    let orders: Vec<Order> = checked(&format!("[{}]", orders.join(",")));
    db.store.write_orders(&orders, NOW).await.expect("orders");
    let (p, _) = all_purchases(&db).await;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let special = [0.1 + 0.2, 1e-310, f64::MIN_POSITIVE, f64::MAX, 5e-324, 1.0 / 3.0, 123_456_789.012_345_67, 4.0];
    let texts = ["plain", "quote \" and \\ backslash", "ünïcödé ☕", "new\nline\ttab", "'; DROP TABLE scores; --"];
    let rows: Vec<ScoreRow> = p
        .customer
        .iter()
        .enumerate()
        .map(|(i, &customer)| {
            let mut row = score_row(customer, "new", 0.5);
            // Special values, then random bit patterns of finite doubles of both signs.
            let float = special.get(i).copied().unwrap_or_else(|| {
                let f = f64::from_bits(random() & 0x7fef_ffff_ffff_ffff);
                if i % 2 == 0 { f } else { -f }
            });
            if let Some(m) = row.model.as_mut() {
                m.p_alive = float;
                m.clv_12m = Some(float / 7.0);
                m.expected_spend = (i % 3 != 0).then_some(float * 0.75);
            }
            row.main_category = Some(texts[i % texts.len()].to_string());
            row.next_category = (i % 4 != 0).then(|| texts[(i + 1) % texts.len()].to_string());
            row
        })
        .collect();
    db.store.write_scores(&run(NOW), &rows).await.expect("scores");
    // Every row is distinct, so equal multisets mean every row came back exactly.
    type Key = (u64, Option<u64>, Option<u64>, Option<String>, Option<String>);
    let mut written: Vec<Key> = rows
        .iter()
        .map(|r| {
            let m = r.model.as_ref().expect("model");
            let bits = (m.p_alive.to_bits(), m.clv_12m.map(f64::to_bits), m.expected_spend.map(f64::to_bits));
            (bits.0, bits.1, bits.2, r.main_category.clone(), r.next_category.clone())
        })
        .collect();
    let mut stored: Vec<Key> = Vec::new();
    for i in 0..64 {
        let s = db.store.customer(&format!("k{i:02}"), 0).await.expect("read").expect("stored").scores.expect("scored");
        let m = s.model.expect("model");
        stored.push((
            m.p_alive.to_bits(),
            m.clv_12m.map(f64::to_bits),
            m.expected_spend.map(f64::to_bits),
            s.main_category,
            s.next_category,
        ));
    }
    written.sort();
    stored.sort();
    assert_eq!(stored, written);
}

/// Orders over two chunks of ids with every case a purchase read meets: refunds, cancellations,
/// zero amounts, several lines, lines without a category.
fn mixed_orders() -> Vec<Order> {
    (0..70_000)
        .map(|i| {
            let status = match i % 11 {
                3 => "refunded",
                5 => "cancelled",
                _ => "completed",
            };
            let amount = if i % 13 == 0 { "0".to_string() } else { format!("{}.25", i % 500 + 1) };
            let lines = match i % 4 {
                0 => String::new(),
                1 => format!(r#","lines":[{{"product":"p","category":"c{}","quantity":1,"price":"1"}}]"#, i % 9),
                2 => r#","lines":[{"product":"p","quantity":1,"price":"1"},{"product":"q","category":"tea","quantity":2,"price":"1"}]"#.to_string(),
                _ => r#","lines":[{"product":"p","category":"mugs","quantity":1,"price":"1"},{"product":"q","category":"tea","quantity":2,"price":"1"}]"#.to_string(),
            };
            let json = format!(
                r#"{{"id":"o{i}","customer_id":"c{}","time":"2024-01-01T00:00:{:02}.5Z","amount":"{amount}","currency":"EUR","status":"{status}"{lines}}}"#,
                i % 997,
                i % 60
            );
            kanta_store::record::parse_value::<Order>(serde_json::from_str(&json).expect("json"), kanta_domain::TimeRange::ALL).expect("valid")
        })
        .collect()
}

/// The chunks `purchases(true, …)` hands over, as (customer, time, amount) and (customer, category).
async fn purchase_chunks(store: &dyn kanta_store::Storage) -> Vec<(Vec<(i64, i64, i64)>, Vec<(i64, String)>)> {
    let mut chunks = Vec::new();
    store
        .purchases(true, &mut |c| {
            let mut orders: Vec<(i64, i64, i64)> =
                c.customer.iter().zip(&c.time).zip(&c.amount).map(|((&c, &t), &a)| (c, t, a)).collect();
            let mut lines: Vec<(i64, String)> = c.lines.iter().map(|(i, k)| (c.customer[i], k.to_string())).collect();
            orders.sort_unstable();
            lines.sort_unstable();
            chunks.push((orders, lines));
        })
        .await
        .expect("purchases");
    chunks
}

/// A file is read directly (`sqlite_scan`), an in-memory database through the driver's
/// string aggregates, as PostgreSQL is: both give the same chunks.
#[tokio::test]
async fn sqlite_files_and_memory_databases_read_the_same_purchases_and_lines() {
    let file = kanta_store::testing::sqlite().await.expect("a file store");
    let memory = kanta_store::open("sqlite::memory:").await.expect("a memory store");
    let orders = mixed_orders();
    for batch in orders.chunks(10_000) {
        file.store.write_orders(batch, NOW).await.expect("write");
        memory.write_orders(batch, NOW).await.expect("write");
    }
    let (from_file, from_memory) = (purchase_chunks(file.store.as_ref()).await, purchase_chunks(memory.as_ref()).await);
    assert_eq!(from_file.len(), 2);
    // 70,000 orders less 6,364 cancelled ones; lines of completed orders with a positive
    // amount: one (i % 4 = 1) or the categorised ones of two (tea; mugs and tea).
    let orders: usize = from_file.iter().map(|c| c.0.len()).sum();
    assert_eq!(orders, 70_000 - (0..70_000).filter(|i| i % 11 == 5).count());
    let expected_lines: usize =
        (0..70_000).filter(|i| i % 11 != 3 && i % 11 != 5 && i % 13 != 0).map(|i| [0, 1, 1, 2][i % 4]).sum();
    assert_eq!(from_file.iter().map(|c| c.1.len()).sum::<usize>(), expected_lines);
    assert!(from_file == from_memory, "the two reads differ");
}

/// A SQLite file made before incremental auto-vacuum is switched over (and rewritten, which
/// also clears what earlier deletions left in free pages) the first time it is opened.
#[tokio::test]
async fn an_older_sqlite_file_is_vacuumed_once_into_incremental_auto_vacuum() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let secret = "leftover-4410@example.org";
    {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("a connection");
        for sql in ["PRAGMA auto_vacuum = NONE", "PRAGMA secure_delete = OFF", "CREATE TABLE scratch (t TEXT)"] {
            sqlx::query(sql).execute(&mut conn).await.expect("setup");
        }
        sqlx::query("INSERT INTO scratch VALUES ($1)").bind(secret).execute(&mut conn).await.expect("insert");
        sqlx::query("DELETE FROM scratch").execute(&mut conn).await.expect("delete");
        conn.close().await.expect("close");
    }
    let raw = || std::fs::read(&file).expect("the file");
    let has_secret = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
    assert!(has_secret(&raw()), "a deletion without secure_delete leaves the bytes");

    let store = kanta_store::open(&url).await.expect("open");
    store.ping().await.expect("ping");
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("a connection");
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut conn).await.expect("pragma");
    assert_eq!(mode, 2, "incremental");
    assert!(!has_secret(&raw()), "the VACUUM rewrote the file");
}

/// Regression (issue 16): a preview of 150 `bought_product` terms ran for 80 s and six of them
/// starved the read pool. The language now caps terms; this checks the store's own time budget.
async fn segment_queries_stop_at_their_budget_and_leave_the_store_usable(db: TestDb) {
    let orders: Vec<Order> = (0..10_000)
        .map(|i| Order {
            id: format!("o{i}"),
            customer_id: format!("c{i}"),
            time: NOW - (i % 400) * 86_400_000_000,
            amount: kanta_core::money::Money::from_raw(10_000 * (1 + i % 50)),
            currency: "EUR".into(),
            status: kanta_store::record::OrderStatus::Completed,
            lines: Vec::new(),
        })
        .collect();
    for batch in orders.chunks(5_000) {
        db.store.write_orders(batch, NOW).await.expect("write");
    }
    let text = "bought_product(\"x\") or orders > 3 or revenue > 45 or did_event(\"y\") or days_since_last_order > 350";
    let expr = kanta_segment::parse(text).expect("valid");
    let nobody = kanta_segment::parse("bought_product(\"x\") or orders > 3 or did_event(\"y\") or revenue > 1000")
        .expect("valid");
    let millisecond = std::time::Duration::from_millis(1);
    let limits = kanta_store::SegmentLimits {
        preview: millisecond,
        refresh: millisecond,
        slots: 1,
        wait: std::time::Duration::from_secs(5),
    };
    let tight = kanta_store::open_with(&db.url, limits).await.expect("the same database, tighter limits");
    for _ in 0..3 {
        let err = tight.segment_count(&expr, NOW).await.expect_err("over budget");
        assert!(matches!(err, kanta_store::StoreError::TooCostly(d) if d == millisecond), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the segment query ran longer than its budget of 1 ms and was stopped; narrow the expression"
        );
        // A page stops at its 21st member, so the page that scans everything is one that finds
        // nobody.
        let err = tight.segment_members(&nobody, NOW, None, 20).await.expect_err("over budget");
        assert!(matches!(err, kanta_store::StoreError::TooCostly(_)), "{err:?}");
    }
    let err = tight.create_segment("costly", text, &expr, NOW).await.expect_err("over budget");
    assert!(matches!(err, kanta_store::StoreError::TooCostly(_)), "{err:?}");
    assert!(tight.segments().await.expect("list").is_empty(), "nothing half-saved");
    // Interrupted connections go back clean: the same store still reads and writes.
    assert!(tight.customer("c7", 0).await.expect("read").is_some());
    let cheap = kanta_segment::parse("orders >= 1").expect("valid");
    assert!(tight.write_orders(&orders[..1], NOW).await.is_ok());
    // Within the default budget the same expression answers; 400 days of orders, one per day
    // for 10,000 customers: those with revenue over 45 (five of every fifty) or a last order
    // more than 350 days ago (49 of every 400).
    let expected = (0..10_000i64).filter(|i| 1 + i % 50 > 45 || i % 400 > 350).count() as i64;
    assert_eq!(db.store.segment_count(&expr, NOW).await.expect("count"), expected);
    assert_eq!(db.store.segment_count(&cheap, NOW).await.expect("count"), 10_000);
}

/// Regression (issue 16): two orders at the largest accepted amount made every revenue segment
/// answer 500 (SQLite's `SUM` overflowed).
async fn a_batch_that_would_take_a_customers_totals_past_the_limit_writes_nothing(db: TestDb) {
    use kanta_core::money::Money;
    let order = |id: &str, customer: &str, raw: i64| Order {
        id: id.into(),
        customer_id: customer.into(),
        time: NOW,
        amount: Money::from_raw(raw),
        currency: "EUR".into(),
        status: kanta_store::record::OrderStatus::Completed,
        lines: Vec::new(),
    };
    // The message's figure is the constant's.
    assert_eq!(kanta_store::MAX_CUSTOMER_TOTAL.raw(), 100_000_000_000_000 * 10_000);
    let sixty_trillion = 600_000_000_000_000_000;
    db.store.write_orders(&[order("a1", "big", sixty_trillion)], NOW).await.expect("under the limit");
    let err = db
        .store
        .write_orders(&[order("x1", "small", 10_000), order("a2", "big", -sixty_trillion)], NOW)
        .await
        .expect_err("a refund counts in absolute value too");
    assert!(matches!(&err, kanta_store::StoreError::TotalTooLarge(ids) if ids == &["big".to_string()]), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the orders of customer `big` would total more than 100,000,000,000,000 in absolute value, beyond what kanta sums exactly; nothing was written"
    );
    let err = db.store.write_orders(&[order("m", "max", i64::MAX)], NOW).await.expect_err("one order past it");
    assert!(matches!(err, kanta_store::StoreError::TotalTooLarge(_)), "{err:?}");
    let c = db.store.counts().await.expect("counts");
    assert_eq!((c.orders, c.customers), (1, 1), "nothing of the refused batches was written");
    // Replacing the order by a smaller one is fine: the check sees the stored state.
    db.store.write_orders(&[order("a1", "big", 1)], NOW).await.expect("replaced");
    db.store.write_orders(&[order("a2", "big", sixty_trillion)], NOW).await.expect("now under the limit");
    let expr = kanta_segment::parse("revenue > 1").expect("valid");
    assert_eq!(db.store.segment_count(&expr, NOW + 1).await.expect("no overflow"), 1);
}

/// `kanta_domain::purchase` states what counts as a purchase once in Rust and once in SQL: the
/// store's reads (the purchases scan, with their lines) and the segment language (which compiles
/// `orders`, `bought_category`) must agree with the Rust functions on every kind of order.
async fn the_purchase_rule_in_sql_agrees_with_the_rust_predicate(db: TestDb) {
    use kanta_domain::purchase::{Kind, is_purchase, signed_amount};
    use kanta_store::record::{Line, OrderStatus};

    let statuses = [OrderStatus::Completed, OrderStatus::Refunded, OrderStatus::Cancelled];
    let amounts = [50_000, -50_000, 0];
    let mut orders = Vec::new();
    for (s, status) in statuses.iter().enumerate() {
        for (a, amount) in amounts.iter().enumerate() {
            let case = (s * amounts.len() + a) as i64;
            orders.push(Order {
                id: format!("o{case}"),
                customer_id: format!("c{case}"),
                // The case number, in whole seconds, names the order in the purchases' columns.
                time: (case + 1) * 1_000_000,
                amount: kanta_core::money::Money::from_raw(*amount),
                currency: "EUR".into(),
                status: *status,
                lines: vec![Line {
                    product: "p".into(),
                    category: Some("rule".into()),
                    quantity: kanta_core::money::Money::from_raw(10_000),
                    price: kanta_core::money::Money::from_raw(*amount),
                }],
            });
        }
    }
    db.store.write_orders(&orders, NOW).await.expect("write");

    let mut read = Vec::new();
    let mut with_lines = Vec::new();
    db.store
        .purchases(true, &mut |chunk: Purchases| {
            read.extend(chunk.time.iter().zip(&chunk.amount).map(|(t, a)| (t - 1, *a)));
            with_lines.extend(chunk.lines.iter().map(|(i, _)| chunk.time[i] - 1));
        })
        .await
        .expect("purchases");
    read.sort_unstable();
    with_lines.sort_unstable();
    let expr = kanta_segment::parse("orders >= 1").expect("valid");
    let (buyers, _) = db.store.segment_members(&expr, NOW, None, 100).await.expect("members");
    let expr = kanta_segment::parse("bought_category(\"rule\")").expect("valid");
    let (category_buyers, _) = db.store.segment_members(&expr, NOW, None, 100).await.expect("members");

    let mut expected_read = Vec::new();
    let mut expected_lines = Vec::new();
    let mut expected_buyers = Vec::new();
    for (case, o) in orders.iter().enumerate() {
        let case = case as i64;
        let (status, amount) = (o.status.as_str(), o.amount.raw());
        if let Some(signed) = signed_amount(status, amount) {
            expected_read.push((case, signed));
            if Kind::of(signed) == Kind::Purchase {
                expected_lines.push(case);
            }
        }
        if is_purchase(status, amount) {
            expected_buyers.push(o.customer_id.clone());
        }
    }
    assert_eq!(read, expected_read, "the purchases' signed amounts");
    assert_eq!(with_lines, expected_lines, "purchase lines");
    assert_eq!(expected_buyers, ["c0"], "one purchase among the nine kinds of order");
    let ids = |profiles: &[kanta_store::Profile]| profiles.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&buyers), expected_buyers, "orders >= 1");
    assert_eq!(ids(&category_buyers), expected_buyers, "bought_category");
}
