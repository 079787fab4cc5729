//! Segments: previews on both backends, saved segments and transitions, time budgets.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    segments_select_the_same_customers_on_both_backends,
    saved_segments_record_who_enters_and_leaves,
    segment_queries_stop_at_their_budget_and_leave_the_store_usable,
);

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
    db.store.write_orders(&orders, at(NOW)).await.expect("write");
    let customers: Vec<Customer> = checked(
        r#"[{"id":"ann","email":"ann@example.fi","attributes":{"tier":"gold","visits":12},
             "consent":[{"channel":"email","status":"granted","time":"2024-01-01T00:00:00Z"}]},
            {"id":"bob","attributes":{"tier":"silver","visits":"many"},
             "consent":[{"channel":"email","status":"granted","time":"2024-01-01T00:00:00Z"},
                        {"channel":"email","status":"revoked","time":"2024-02-01T00:00:00Z"}]},
            {"id":"dee","attributes":{"vip":true}}]"#,
    );
    db.store.write_customers(&customers, at(NOW)).await.expect("write");
    let events: Vec<Event> = checked(
        r#"[{"customer_id":"bob","name":"login","time":"2024-10-26T00:00:00Z"},
            {"customer_id":"dee","name":"login","time":"2024-01-01T00:00:00Z"}]"#,
    );
    db.store.write_events(&events, at(NOW)).await.expect("write");

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

async fn saved_segments_record_who_enters_and_leaves(db: TestDb) {
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"g1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"g2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"},
      {"id":"g3","customer_id":"cy","time":"2024-10-22T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("write");
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
    db.store.write_orders(&changes, at(NOW)).await.expect("write");
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

/// Regression (issue 16): a preview of 150 `bought_product` terms ran for 80 s and six of them
/// starved the read pool. The language now caps terms; this checks the store's own time budget.
async fn segment_queries_stop_at_their_budget_and_leave_the_store_usable(db: TestDb) {
    let orders: Vec<Order> = (0..10_000)
        .map(|i| Order {
            id: format!("o{i}"),
            customer_id: kanta_domain::CustomerId::parse(format!("c{i}")).expect("an id"),
            time: at(NOW - (i % 400) * 86_400_000_000),
            amount: kanta_core::money::Money::from_raw(10_000 * (1 + i % 50)),
            currency: kanta_domain::Currency::parse("EUR").expect("a currency"),
            status: kanta_store::record::OrderStatus::Completed,
            lines: Vec::new(),
        })
        .collect();
    for batch in orders.chunks(5_000) {
        db.store.write_orders(batch, at(NOW)).await.expect("write");
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
    assert!(tight.write_orders(&orders[..1], at(NOW)).await.is_ok());
    // Within the default budget the same expression answers; 400 days of orders, one per day
    // for 10,000 customers: those with revenue over 45 (five of every fifty) or a last order
    // more than 350 days ago (49 of every 400).
    let expected = (0..10_000i64).filter(|i| 1 + i % 50 > 45 || i % 400 > 350).count() as i64;
    assert_eq!(db.store.segment_count(&expr, NOW).await.expect("count"), expected);
    assert_eq!(db.store.segment_count(&cheap, NOW).await.expect("count"), 10_000);
}
