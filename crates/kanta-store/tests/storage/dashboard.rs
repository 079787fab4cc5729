//! The dashboard's sessions, customer search and stage movements.

use kanta_store::{ChurnRisk, CustomerCursor, CustomerFilter, CustomerSort, TokenHash};

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    sessions_end_at_expiry_logout_and_when_their_token_is_revoked,
    the_customer_list_searches_prefixes_filters_scores_and_pages,
    score_orders_skip_erased_customers_however_many_lead,
    stage_movements_count_the_changes_of_recent_completed_runs,
);

const HOUR: i64 = 3_600_000_000;

async fn sessions_end_at_expiry_logout_and_when_their_token_is_revoked(db: TestDb) {
    let token = Secret::generate().expect("randomness");
    let token_id = db.store.insert_token(&token.hash(), Scope::Read, Some("desk"), NOW).await.expect("token");
    let (one, two) = (TokenHash::of("session-one"), TokenHash::of("session-two"));
    db.store.create_session(&one, token_id, "csrf-1", NOW, NOW + HOUR).await.expect("session");
    db.store.create_session(&two, token_id, "csrf-2", NOW, NOW + 2 * HOUR).await.expect("session");

    let found = db.store.find_session(&one, NOW + 1).await.expect("find").expect("alive");
    assert_eq!(
        (found.token_id, found.scope, found.token_name.as_deref(), found.csrf.as_str(), found.expires_at),
        (token_id, Scope::Read, Some("desk"), "csrf-1", NOW + HOUR)
    );
    assert!(db.store.find_session(&TokenHash::of("session-three"), NOW).await.expect("find").is_none());
    // Expired: not found, and deleted when the next session is made.
    assert!(db.store.find_session(&one, NOW + HOUR).await.expect("find").is_none());
    let three = TokenHash::of("session-three");
    db.store.create_session(&three, token_id, "csrf-3", NOW + HOUR + 1, NOW + 3 * HOUR).await.expect("session");
    assert!(db.store.find_session(&one, NOW).await.expect("find").is_none(), "the expired row was deleted");

    assert!(db.store.delete_session(&three).await.expect("logout"));
    assert!(!db.store.delete_session(&three).await.expect("logout"), "already gone");
    assert!(db.store.find_session(&three, NOW + HOUR + 2).await.expect("find").is_none());

    assert!(db.store.find_session(&two, NOW + HOUR + 2).await.expect("find").is_some());
    assert!(db.store.revoke_token(token_id, NOW + HOUR + 3).await.expect("revoke"));
    assert!(db.store.find_session(&two, NOW + HOUR + 4).await.expect("find").is_none(), "revoking ends the session");
}

async fn the_customer_list_searches_prefixes_filters_scores_and_pages(db: TestDb) {
    let customers: Vec<Customer> = checked(
        r#"[
      {"id":"a-100","email":"Ann.Lee@example.org","name":"Ann Lee"},
      {"id":"a-101","email":"bob@example.org","name":"Bob Åkesson"},
      {"id":"b-200","email":"annika@example.org","name":"annika"},
      {"id":"b-201","name":"Zoë"},
      {"id":"c-300","email":"gone@example.org","name":"Ann Gone"}
    ]"#,
    );
    db.store.write_customers(&customers, at(NOW)).await.expect("customers");
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"o1","customer_id":"a-100","time":"2024-10-20T10:00:00Z","amount":"30","currency":"EUR"},
      {"id":"o2","customer_id":"a-101","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"},
      {"id":"o3","customer_id":"b-200","time":"2024-10-22T10:00:00Z","amount":"50","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("orders");
    let (p, _) = all_purchases(&db).await;
    let key = |i: usize| p.customer[i];
    db.store
        .write_scores(
            &run(NOW),
            &[score_row(key(0), "loyal", 0.9), score_row(key(1), "new", 0.2), score_row(key(2), "new", 0.5)],
        )
        .await
        .expect("scores");
    assert!(db.store.erase_customer("c-300", None, NOW).await.expect("erase"));

    let ids = |filter: CustomerFilter| {
        let store = db.store.clone();
        async move {
            let (rows, next) = store.find_customers(&filter, None, 10).await.expect("list");
            assert!(next.is_none());
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let search = |text: &str| CustomerFilter { search: Some(text.into()), ..CustomerFilter::default() };
    // Everyone but the erased customer, by id.
    assert_eq!(ids(CustomerFilter::default()).await, ["a-100", "a-101", "b-200", "b-201"]);
    // Id prefixes are exact; emails and names ignore case; an empty search is no search.
    assert_eq!(ids(search("a-10")).await, ["a-100", "a-101"]);
    assert_eq!(ids(search("A-10")).await, Vec::<String>::new());
    assert_eq!(ids(search("ann")).await, ["a-100", "b-200"]);
    assert_eq!(ids(search("BOB@")).await, ["a-101"]);
    assert_eq!(ids(search("zoë")).await, ["b-201"]);
    assert_eq!(ids(search("  ")).await, ["a-100", "a-101", "b-200", "b-201"]);
    // A search that looks like SQL is only text.
    assert_eq!(ids(search("a' OR '1'='1")).await, Vec::<String>::new());
    assert_eq!(ids(search("%")).await, Vec::<String>::new());

    let stage = CustomerFilter { stage: Some("new".into()), ..CustomerFilter::default() };
    assert_eq!(ids(stage.clone()).await, ["a-101", "b-200"]);
    assert_eq!(ids(CustomerFilter { value_tier: Some("top".into()), ..CustomerFilter::default() }).await, ["a-100"]);
    let risk = |r| CustomerFilter { risk: Some(r), ..CustomerFilter::default() };
    assert_eq!(ids(risk(ChurnRisk::High)).await, ["a-101"]);
    assert_eq!(ids(risk(ChurnRisk::Medium)).await, ["b-200"]);
    assert_eq!(ids(risk(ChurnRisk::Low)).await, ["a-100"]);
    assert_eq!(ids(CustomerFilter { search: Some("ann".into()), ..stage }).await, ["b-200"]);

    let expr = kanta_segment::parse("stage = \"new\" or stage = \"loyal\" and p_alive > 0.8").expect("valid");
    let segment = db.store.create_segment("scored", "…", &expr, NOW).await.expect("segment");
    let members = CustomerFilter { segment: Some(segment.id), ..CustomerFilter::default() };
    assert_eq!(ids(members).await, ["a-100", "a-101", "b-200"]);
    let ann = db.store.customer_segments("a-100").await.expect("segments");
    assert_eq!(
        (ann.member_of.as_slice(), ann.history.len()),
        (&["scored".to_string()][..], 0),
        "a baseline records no entry"
    );
    // Ann's P(alive) falls: the next refresh takes her out, and her page shows when.
    db.store
        .write_scores(
            &run(NOW + HOUR),
            &[score_row(key(0), "loyal", 0.5), score_row(key(1), "new", 0.2), score_row(key(2), "new", 0.5)],
        )
        .await
        .expect("scores");
    db.store.refresh_segment(segment.id, &expr, NOW + 2 * HOUR).await.expect("refresh");
    let ann = db.store.customer_segments("a-100").await.expect("segments");
    assert!(ann.member_of.is_empty());
    let moments: Vec<(&str, &str, i64)> =
        ann.history.iter().map(|m| (m.segment.as_str(), m.kind.as_str(), m.time)).collect();
    assert_eq!(moments, [("scored", "exit", NOW + 2 * HOUR)]);
    // The segment's page: exits per day, and the latest transitions.
    let day = (NOW + 2 * HOUR) / (24 * HOUR);
    let days = db.store.segment_days(segment.id, NOW).await.expect("days");
    assert_eq!(days, [kanta_store::SegmentDay { day, entered: 0, exited: 1 }]);
    assert!(db.store.segment_days(segment.id, NOW + 3 * HOUR).await.expect("days").is_empty());
    let recent = db.store.recent_transitions(segment.id, 5).await.expect("transitions");
    assert_eq!(recent.iter().map(|t| (t.customer.as_str(), t.kind.as_str())).collect::<Vec<_>>(), [("a-100", "exit")]);
    assert_eq!(db.store.customer_segments("nobody").await.expect("segments"), kanta_store::CustomerSegments::default());

    // Pages of two: the cursor is the last row's position (b-200 has P(alive) 0.5 since the second run).
    let (page, next) = db.store.find_customers(&CustomerFilter::default(), None, 2).await.expect("page");
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a-100", "a-101"]);
    let (page, last) = db.store.find_customers(&CustomerFilter::default(), next, 2).await.expect("page");
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b-200", "b-201"]);
    assert_eq!(last, None);
    // The scores come along; an unscored customer has none.
    assert_eq!(
        (page[0].stage.as_deref(), page[0].value_tier.as_deref(), page[0].p_alive, page[0].clv_12m),
        (Some("new"), Some("mid"), Some(0.5), Some(500.0))
    );
    assert_eq!((page[1].stage.as_deref(), page[1].p_alive), (None, None));

    // Sorted by value or by risk: scored customers only, a page at a time by (value, id); Ann
    // and b-200 tie at P(alive) 0.5 and CLV 500 since the second run, and the id breaks it.
    let by = |sort| CustomerFilter { sort, ..CustomerFilter::default() };
    assert_eq!(ids(by(CustomerSort::ValueDesc)).await, ["a-100", "b-200", "a-101"]);
    assert_eq!(ids(by(CustomerSort::RiskDesc)).await, ["a-101", "a-100", "b-200"]);
    assert_eq!(
        ids(CustomerFilter { search: Some("a-".into()), ..by(CustomerSort::ValueDesc) }).await,
        ["a-100", "a-101"]
    );
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = db.store.find_customers(&by(CustomerSort::ValueDesc), after, 1).await.expect("page");
        seen.extend(page.into_iter().map(|r| r.id));
        match next {
            Some(cursor) => {
                assert!(cursor.value.is_some(), "a value sort's cursor carries the value");
                after = Some(CustomerCursor::parse(&cursor.encode()).expect("the cursor reads back"));
            }
            None => break,
        }
    }
    assert_eq!(seen, ["a-100", "b-200", "a-101"]);
    for bad in ["", "x", "-1", "1~", "inf~3", "NaN~2", "1e3~-4"] {
        assert_eq!(CustomerCursor::parse(bad), None, "{bad}");
    }
    assert_eq!(CustomerCursor::parse("7"), Some(CustomerCursor { value: None, id: 7 }));
}

async fn stage_movements_count_the_changes_of_recent_completed_runs(db: TestDb) {
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"s1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"s2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"},
      {"id":"s3","customer_id":"cy","time":"2024-10-22T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("write");
    let (p, _) = all_purchases(&db).await;
    let (ann, bob, cy) = (p.customer[0], p.customer[1], p.customer[2]);
    assert!(db.store.latest_completed_run().await.expect("run").is_none());
    let week = 7 * 24 * HOUR;
    db.store
        .write_scores(&run(NOW), &[score_row(ann, "new", 0.9), score_row(bob, "new", 0.6), score_row(cy, "new", 0.5)])
        .await
        .expect("first run");
    let second = db
        .store
        .write_scores(
            &run(NOW + week),
            &[score_row(ann, "repeat", 0.9), score_row(bob, "repeat", 0.6), score_row(cy, "slipping", 0.5)],
        )
        .await
        .expect("second run");
    let mut cancelled = run(NOW + week + HOUR);
    cancelled.diagnostics = serde_json::json!({"cancelled": {"phase": "read"}});
    db.store.record_unfinished_run(&cancelled, "cancelled").await.expect("cancelled run");

    let movements = |since| {
        let store = db.store.clone();
        async move {
            store
                .stage_movements(since)
                .await
                .expect("movements")
                .into_iter()
                .map(|m| (m.from, m.to, m.customers))
                .collect::<Vec<_>>()
        }
    };
    let s = |t: &str| Some(t.to_string());
    assert_eq!(
        movements(NOW + 2_000_000).await,
        [(s("new"), "repeat".to_string(), 2), (s("new"), "slipping".to_string(), 1)],
        "only the second run is recent"
    );
    assert_eq!(
        movements(NOW).await,
        [(None, "new".to_string(), 3), (s("new"), "repeat".to_string(), 2), (s("new"), "slipping".to_string(), 1)]
    );
    assert_eq!(movements(NOW + 2 * week).await, []);
    // The latest completed run, not the cancelled one after it.
    let latest = db.store.latest_completed_run().await.expect("run").expect("a run");
    assert_eq!((latest.id, latest.status.as_str()), (second.id, "completed"));
}

async fn score_orders_skip_erased_customers_however_many_lead(db: TestDb) {
    // 70 customers, CLV 10, 20, …, 700; the 66 most valuable are erased (their scores stay), more
    // than one round of the scores-first cut holds.
    let orders: Vec<Order> = (0..70)
        .map(|i| {
            let json = format!(
                r#"[{{"id":"o{i}","customer_id":"k{i:02}","time":"2024-10-01T10:00:00Z","amount":"10","currency":"EUR"}}]"#
            );
            checked::<Order>(&json).remove(0)
        })
        .collect();
    db.store.write_orders(&orders, at(NOW)).await.expect("orders");
    let (p, _) = all_purchases(&db).await;
    let mut keys = p.customer.clone();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 70);
    // The k-th customer (by internal id) gets P(alive) (k + 1) / 100: CLV 10 × (k + 1).
    let rows: Vec<ScoreRow> =
        keys.iter().enumerate().map(|(k, &key)| score_row(key, "repeat", (k as f64 + 1.0) / 100.0)).collect();
    db.store.write_scores(&run(NOW), &rows).await.expect("scores");
    for i in 4..70 {
        assert!(db.store.erase_customer(&format!("k{i:02}"), None, NOW).await.expect("erase"));
    }
    let by_value = CustomerFilter { sort: CustomerSort::ValueDesc, ..CustomerFilter::default() };
    let (page, next) = db.store.find_customers(&by_value, None, 2).await.expect("page");
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["k03", "k02"]);
    let (page, last) = db.store.find_customers(&by_value, next, 2).await.expect("page");
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["k01", "k00"]);
    assert_eq!(last, None);
    // With a condition on the customers themselves (a search) the other path gives the same.
    let searched = CustomerFilter { search: Some("k0".into()), ..by_value.clone() };
    let (page, _) = db.store.find_customers(&searched, None, 10).await.expect("page");
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["k03", "k02", "k01", "k00"]);
    assert_eq!(db.store.find_customers(&by_value, None, 0).await.expect("page"), (Vec::new(), None));
}
