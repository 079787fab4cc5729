//! Orders, events and feedback: writes, the purchases read, feedback facts, the purchase rule.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    orders_create_customers_and_reposting_changes_nothing,
    an_order_posted_again_with_changes_is_replaced_with_its_lines,
    the_last_record_wins_when_a_batch_names_an_id_twice,
    events_are_stored_once_per_id,
    feedback_is_created_and_replaced_by_id,
    purchases_come_in_chunks_with_refunds_negative_and_cancellations_left_out,
    feedback_facts_carry_scores_net_revenue_and_last_purchase,
    a_batch_that_would_take_a_customers_totals_past_the_limit_writes_nothing,
    the_purchase_rule_in_sql_agrees_with_the_rust_predicate,
);

async fn orders_create_customers_and_reposting_changes_nothing(db: TestDb) {
    let orders: Vec<Order> = checked(ORDERS);
    let first = db.store.write_orders(&orders, at(NOW)).await.expect("write");
    assert_eq!(first, counts(3, 0, 0, 2));
    let again = db.store.write_orders(&orders, at(NOW + 1)).await.expect("write");
    assert_eq!(again, counts(0, 0, 3, 0));
    let c = db.store.counts().await.expect("counts");
    assert_eq!((c.customers, c.orders), (2, 3));
    let facts = db.store.order_facts().await.expect("facts");
    let summary: Vec<(&str, &str, i64, i64)> =
        facts.iter().map(|f| (f.customer.as_str(), f.order.as_str(), f.time.micros(), f.amount)).collect();
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
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
    let changed: Vec<Order> = checked(
        r#"[{"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
             "status":"refunded","lines":[{"product":"beans","quantity":1,"price":"19.90"}]},
            {"id":"o2","customer_id":"00042","time":"2024-02-05T10:00:00Z","amount":30,"currency":"EUR"}]"#,
    );
    assert_eq!(db.store.write_orders(&changed, at(NOW)).await.expect("write"), counts(0, 1, 1, 0));
    // Only the lines changed: still an update.
    let lines_only: Vec<Order> = checked(
        r#"[{"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
             "status":"refunded","lines":[{"product":"beans","quantity":1,"price":"19.90"},
                                          {"product":"mug","quantity":1,"price":0}]}]"#,
    );
    assert_eq!(db.store.write_orders(&lines_only, at(NOW)).await.expect("write"), counts(0, 1, 0, 0));
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
    assert_eq!(db.store.write_orders(&orders, at(NOW)).await.expect("write"), counts(1, 0, 0, 1));
    let facts = db.store.order_facts().await.expect("facts");
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].amount, 20_000);
}

async fn events_are_stored_once_per_id(db: TestDb) {
    let events: Vec<Event> = checked(
        r#"[{"id":"e1","customer_id":"c1","name":"login","time":"2024-01-01T00:00:00Z"},
            {"customer_id":"c1","name":"page_view","time":"2024-01-01T00:01:00Z","properties":{"path":"/coffee"}}]"#,
    );
    assert_eq!(db.store.write_events(&events, at(NOW)).await.expect("write"), counts(2, 0, 0, 1));
    assert_eq!(db.store.write_events(&events, at(NOW)).await.expect("write"), counts(0, 0, 2, 0));
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
    assert_eq!(db.store.write_feedback(&fb, at(NOW)).await.expect("write"), counts(1, 0, 0, 1));
    assert_eq!(db.store.write_feedback(&fb, at(NOW)).await.expect("write"), counts(0, 0, 1, 0));
    let fixed: Vec<Feedback> = checked(
        r#"[{"id":"f1","customer_id":"c1","time":"2024-01-01T00:00:00Z","nps":4,"text":"late delivery",
             "topics":["delivery","price"],"channel":"email","order_id":"o1"}]"#,
    );
    assert_eq!(db.store.write_feedback(&fixed, at(NOW)).await.expect("write"), counts(0, 1, 0, 0));
    let record = db.store.customer("c1", 0).await.expect("read").expect("exists");
    let f = &record.feedback[0];
    assert_eq!(
        (f.nps, f.topics.clone(), f.order_id.as_deref()),
        (Some(4), vec!["delivery".into(), "price".into()], Some("o1"))
    );
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
    db.store.write_orders(&orders, at(NOW)).await.expect("write");
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
        db.store.write_orders(batch, at(NOW)).await.expect("write");
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

async fn feedback_facts_carry_scores_net_revenue_and_last_purchase(db: TestDb) {
    let customers: Vec<Customer> =
        checked(r#"[{"id":"ann","name":"Ann","email":"ann@example.com"},{"id":"zed","email":"zed@example.com"}]"#);
    db.store.write_customers(&customers, at(NOW)).await.expect("customers");
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"h1","customer_id":"ann","time":"2024-10-01T10:00:00Z","amount":"120.50","currency":"EUR"},
      {"id":"h2","customer_id":"ann","time":"2024-10-05T10:00:00Z","amount":"20","currency":"EUR","status":"refunded"},
      {"id":"h3","customer_id":"ann","time":"2024-10-09T10:00:00Z","amount":"99","currency":"EUR","status":"cancelled"},
      {"id":"h4","customer_id":"bob","time":"2024-10-02T10:00:00Z","amount":"15","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("orders");
    let feedback: Vec<Feedback> = checked(
        r#"[
      {"id":"q2","customer_id":"ann","time":"2024-10-08T00:00:00Z","nps":4,"csat":2,"topics":["Delivery"],"text":"late"},
      {"id":"q1","customer_id":"ann","time":"2024-10-03T00:00:00Z","nps":9},
      {"id":"q3","customer_id":"cy","time":"2024-10-04T00:00:00Z","csat":5},
      {"id":"q4","customer_id":"zed","time":"2024-10-04T00:00:00Z","nps":0}
    ]"#,
    );
    db.store.write_feedback(&feedback, at(NOW)).await.expect("feedback");
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
        file.store.write_orders(batch, at(NOW)).await.expect("write");
        memory.write_orders(batch, at(NOW)).await.expect("write");
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

/// Regression (issue 16): two orders at the largest accepted amount made every revenue segment
/// answer 500 (SQLite's `SUM` overflowed).
async fn a_batch_that_would_take_a_customers_totals_past_the_limit_writes_nothing(db: TestDb) {
    use kanta_core::money::Money;
    let order = |id: &str, customer: &str, raw: i64| Order {
        id: id.into(),
        customer_id: kanta_domain::CustomerId::parse(customer).expect("an id"),
        time: at(NOW),
        amount: Money::from_raw(raw),
        currency: kanta_domain::Currency::parse("EUR").expect("a currency"),
        status: kanta_store::record::OrderStatus::Completed,
        lines: Vec::new(),
    };
    // The message's figure is the constant's.
    assert_eq!(kanta_store::MAX_CUSTOMER_TOTAL.raw(), 100_000_000_000_000 * 10_000);
    let sixty_trillion = 600_000_000_000_000_000;
    db.store.write_orders(&[order("a1", "big", sixty_trillion)], at(NOW)).await.expect("under the limit");
    let err = db
        .store
        .write_orders(&[order("x1", "small", 10_000), order("a2", "big", -sixty_trillion)], at(NOW))
        .await
        .expect_err("a refund counts in absolute value too");
    assert!(matches!(&err, kanta_store::StoreError::TotalTooLarge(ids) if ids == &["big".to_string()]), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the orders of customer `big` would total more than 100,000,000,000,000 in absolute value, beyond what kanta sums exactly; nothing was written"
    );
    let err = db.store.write_orders(&[order("m", "max", i64::MAX)], at(NOW)).await.expect_err("one order past it");
    assert!(matches!(err, kanta_store::StoreError::TotalTooLarge(_)), "{err:?}");
    let c = db.store.counts().await.expect("counts");
    assert_eq!((c.orders, c.customers), (1, 1), "nothing of the refused batches was written");
    // Replacing the order by a smaller one is fine: the check sees the stored state.
    db.store.write_orders(&[order("a1", "big", 1)], at(NOW)).await.expect("replaced");
    db.store.write_orders(&[order("a2", "big", sixty_trillion)], at(NOW)).await.expect("now under the limit");
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
                customer_id: kanta_domain::CustomerId::parse(format!("c{case}")).expect("an id"),
                // The case number, in whole seconds, names the order in the purchases' columns.
                time: at((case + 1) * 1_000_000),
                amount: kanta_core::money::Money::from_raw(*amount),
                currency: kanta_domain::Currency::parse("EUR").expect("a currency"),
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
    db.store.write_orders(&orders, at(NOW)).await.expect("write");

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
        let (status, amount) = (o.status, o.amount.raw());
        if let Some(signed) = signed_amount(status, amount) {
            expected_read.push((case, signed));
            if Kind::of(signed) == Kind::Purchase {
                expected_lines.push(case);
            }
        }
        if is_purchase(status, amount) {
            expected_buyers.push(o.customer_id.as_str().to_string());
        }
    }
    assert_eq!(read, expected_read, "the purchases' signed amounts");
    assert_eq!(with_lines, expected_lines, "purchase lines");
    assert_eq!(expected_buyers, ["c0"], "one purchase among the nine kinds of order");
    let ids = |profiles: &[kanta_store::Profile]| profiles.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&buyers), expected_buyers, "orders >= 1");
    assert_eq!(ids(&category_buyers), expected_buyers, "bought_category");
}
