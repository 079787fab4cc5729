//! Customers: writes, consent, signed inbound writes, the 360 view, listing, erasure.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    customer_fields_merge_and_attributes_follow_rfc_7396,
    consent_is_kept_as_history_with_the_latest_per_channel_current,
    a_signed_write_is_accepted_once_until_its_signature_expires,
    the_360_view_holds_everything_in_order,
    cursor_pagination_visits_every_customer_once,
    erasure_removes_personal_data_and_keeps_anonymous_orders,
    erasure_leaves_no_personal_data_in_the_database_files_or_rows,
    sql_looking_values_are_stored_verbatim,
);

async fn customer_fields_merge_and_attributes_follow_rfc_7396(db: TestDb) {
    let first: Vec<Customer> = checked(
        r#"[{"id":"c1","email":"anna@example.fi","name":"Anna","attributes":{"tier":"gold","pets":{"cat":1},"x":1}}]"#,
    );
    assert_eq!(db.store.write_customers(&first, at(NOW)).await.expect("write"), counts(1, 0, 0, 0));
    assert_eq!(db.store.write_customers(&first, at(NOW)).await.expect("write"), counts(0, 0, 1, 0));
    let patch: Vec<Customer> =
        checked(r#"[{"id":"c1","phone":"+358401234567","attributes":{"pets":{"dog":2},"x":null,"vip":true}}]"#);
    assert_eq!(db.store.write_customers(&patch, at(NOW + 5)).await.expect("write"), counts(0, 1, 0, 0));
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
    db.store.write_customers(&batch, at(NOW)).await.expect("write");
    let revoke: Vec<Customer> = checked(
        r#"[{"id":"c1","consent":[{"channel":"email","status":"revoked","source":"unsubscribe","time":"2024-03-01T00:00:00Z"}]}]"#,
    );
    db.store.write_customers(&revoke, at(NOW)).await.expect("write");
    db.store.write_customers(&revoke, at(NOW)).await.expect("re-post is a no-op");
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
    let first = db.store.write_customers_once(&seen("crm", "aa"), &grant, at(NOW)).await.expect("write");
    assert_eq!(first, Some(counts(1, 0, 0, 0)));
    let revoke: Vec<Customer> = checked(r#"[{"id":"c1","consent":[{"channel":"email","status":"revoked"}]}]"#);
    db.store.write_customers(&revoke, at(NOW + 10_000_000)).await.expect("write");
    // The same signature again, later but inside its window: refused, nothing written.
    let replay = db.store.write_customers_once(&seen("crm", "aa"), &grant, at(NOW + 20_000_000)).await.expect("write");
    assert_eq!(replay, None);
    let record = db.store.customer("c1", 0).await.expect("read").expect("exists");
    assert_eq!(record.consent_history.len(), 2);
    assert_eq!(record.consent[0].status, "revoked");
    // Another hook's signature with the same digest is another request.
    let other = db.store.write_customers_once(&seen("shop", "aa"), &[], at(NOW + 20_000_000)).await.expect("write");
    assert_eq!(other, Some(WriteCounts::default()));
    // Once expired, the row is purged (the API refuses the stale timestamp before it gets here).
    let later = db.store.write_customers_once(&seen("crm", "aa"), &[], at(NOW + 300_000_000)).await.expect("write");
    assert_eq!(later, Some(WriteCounts::default()));
}

async fn the_360_view_holds_everything_in_order(db: TestDb) {
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
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
    db.store.write_customers(&checked::<Customer>(&format!("[{}]", json.join(","))), at(NOW)).await.expect("write");
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = db.store.list_customers(cursor, 10).await.expect("list");
        pages += 1;
        seen.extend(page.into_iter().map(|p| p.id));
        // A customer created while paging appears on a later page, never shifts earlier ones.
        if pages == 1 {
            db.store.write_customers(&checked::<Customer>(r#"[{"id":"late"}]"#), at(NOW)).await.expect("write");
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
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
    let profile: Vec<Customer> = checked(
        r#"[{"id":"00042","email":"anna@example.fi","name":"Anna","attributes":{"a":1},
             "consent":[{"channel":"email","status":"granted"}]}]"#,
    );
    db.store.write_customers(&profile, at(NOW)).await.expect("write");
    db.store
        .write_events(
            &checked::<Event>(r#"[{"customer_id":"00042","name":"login","time":"2024-01-01T00:00:00Z"}]"#),
            at(NOW),
        )
        .await
        .expect("write");
    db.store
        .write_feedback(
            &checked::<Feedback>(
                r#"[{"id":"f1","customer_id":"00042","time":"2024-01-01T00:00:00Z","nps":9,"text":"I am Anna"}]"#,
            ),
            at(NOW),
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
    db.store.write_customers(&customers, at(NOW)).await.expect("write");
    let order = format!(
        r#"[{{"id":"zo1","customer_id":"{ZEB_ID}","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR"}}]"#
    );
    db.store.write_orders(&checked::<Order>(&order), at(NOW)).await.expect("write");
    let event = format!(
        r#"[{{"customer_id":"{ZEB_ID}","name":"login","time":"2024-01-01T00:00:00Z","properties":{{"ip":"{ZEB_IP}"}}}}]"#
    );
    db.store.write_events(&checked::<Event>(&event), at(NOW)).await.expect("write");
    let feedback = format!(
        r#"[{{"id":"zf1","customer_id":"{ZEB_ID}","time":"2024-01-02T00:00:00Z","nps":3,
             "text":"This is {ZEB_NAME}, call me on {ZEB_PHONE}"}}]"#
    );
    db.store.write_feedback(&checked::<Feedback>(&feedback), at(NOW)).await.expect("write");
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

async fn sql_looking_values_are_stored_verbatim(db: TestDb) {
    let nasty = r#"x'); DROP TABLE customers; --"#;
    let json = serde_json::json!([{
        "id": nasty, "customer_id": nasty, "time": "2024-01-01T00:00:00Z", "amount": 1, "currency": "EUR",
        "lines": [{"product": "' OR 1=1 --", "category": "\"; DELETE FROM orders", "quantity": 1, "price": 1}]
    }]);
    db.store.write_orders(&checked::<Order>(&json.to_string()), at(NOW)).await.expect("write");
    let record = db.store.customer(nasty, 10).await.expect("read").expect("exists");
    assert_eq!(record.orders[0].id, nasty);
    assert_eq!(record.orders[0].lines[0].product, "' OR 1=1 --");
    assert_eq!(db.store.counts().await.expect("counts").orders, 1);
}
