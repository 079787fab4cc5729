//! The simulation's reads (`HistoryStore`): customers' keys and zones, recent orders (with
//! whether each is the customer's first), events and segment transitions in a window, the
//! marketing messages a cap counts, a journey's earlier runs — paged, erased customers left out.

use kanta_store::journey::{EntryRules, Happening, NewRun, Reentry, RunArm};
use serde_json::json;

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    customer_keys_page_through_the_customers_not_erased,
    orders_events_and_transitions_in_a_window_are_read_with_what_the_triggers_need,
    earlier_runs_are_read_by_journey,
);

const DAY: i64 = 86_400 * 1_000_000;

async fn customers(db: &TestDb, ids: &[(&str, Option<&str>)]) {
    let records: Vec<serde_json::Value> = ids
        .iter()
        .map(|(id, zone)| match zone {
            Some(z) => json!({"id": id, "timezone": z}),
            None => json!({"id": id}),
        })
        .collect();
    let batch: Vec<Customer> = checked(&serde_json::to_string(&records).expect("JSON"));
    db.store.write_customers(&batch, at(NOW)).await.expect("write");
}

async fn customer_keys_page_through_the_customers_not_erased(db: TestDb) {
    customers(&db, &[("a", Some("Europe/Helsinki")), ("b", None), ("c", Some("Asia/Tokyo")), ("d", None)]).await;
    assert!(db.store.erase_customer("b", None, NOW + 1).await.expect("erase"));
    let (first, next) = db.store.customer_keys(None, 2).await.expect("page");
    let (rest, end) = db.store.customer_keys(next, 2).await.expect("page");
    assert_eq!(end, None);
    let all: Vec<(String, Option<String>)> =
        first.iter().chain(&rest).map(|k| (k.external_id.clone(), k.timezone.clone())).collect();
    assert_eq!(
        all,
        [("a".into(), Some("Europe/Helsinki".into())), ("c".into(), Some("Asia/Tokyo".into())), ("d".into(), None)]
    );
    assert!(first.iter().chain(&rest).all(|k| k.id > 0));
}

async fn orders_events_and_transitions_in_a_window_are_read_with_what_the_triggers_need(db: TestDb) {
    customers(&db, &[("a", None), ("b", None), ("gone", None)]).await;
    let t = |day: i64| Timestamp::from_micros(NOW + day * DAY).to_rfc3339();
    let orders = json!([
        {"id": "a1", "customer_id": "a", "time": t(-40), "amount": 10, "currency": "EUR"},
        {"id": "a2", "customer_id": "a", "time": t(-5), "amount": 10, "currency": "EUR"},
        {"id": "b1", "customer_id": "b", "time": t(-3), "amount": 10, "currency": "EUR"},
        {"id": "b2", "customer_id": "b", "time": t(-2), "amount": 10, "currency": "EUR", "status": "cancelled"},
        {"id": "g1", "customer_id": "gone", "time": t(-1), "amount": 10, "currency": "EUR"},
    ]);
    db.store.write_orders(&checked::<Order>(&orders.to_string()), at(NOW)).await.expect("orders");
    let events = json!([
        {"id": "e1", "customer_id": "a", "name": "cart.updated", "time": t(-4), "properties": {"cart_id": "c-1"}},
        {"id": "e2", "customer_id": "b", "name": "cart.updated", "time": t(-31)},
        {"id": "e3", "customer_id": "b", "name": "login", "time": t(-4)},
    ]);
    db.store.write_events(&checked::<Event>(&events.to_string()), at(NOW)).await.expect("events");
    assert!(db.store.erase_customer("gone", None, NOW).await.expect("erase"));
    let window = (Timestamp::from_micros(NOW - 30 * DAY), Timestamp::from_micros(NOW));
    let read = |what| {
        let store = db.store.clone();
        async move {
            let (page, next) = store.happened(what, window.0, window.1, None, 100).await.expect("read");
            assert_eq!(next, None);
            page
        }
    };
    // a2 (a's second order) and b1 (b's first); a1 is before the window, b2 cancelled, g1 erased.
    let orders = read(Happening::Orders).await;
    let summary: Vec<(i64, bool, serde_json::Value)> = orders
        .iter()
        .map(|h| ((h.at.micros() - NOW) / DAY, h.first_order, h.properties.clone().expect("id")))
        .collect();
    assert_eq!(summary, [(-5, false, json!({"order_id": "a2"})), (-3, true, json!({"order_id": "b1"}))]);
    // Paged one at a time, the same two.
    let (one, next) = db.store.happened(Happening::Orders, window.0, window.1, None, 1).await.expect("page");
    let (two, end) = db.store.happened(Happening::Orders, window.0, window.1, next, 1).await.expect("page");
    assert_eq!((one.len(), two.len(), end), (1, 1, None));
    assert_eq!(two[0].properties, Some(json!({"order_id": "b1"})));
    let carts = read(Happening::Event("cart.updated")).await;
    assert_eq!(carts.len(), 1, "e2 is before the window");
    assert_eq!(carts[0].properties.as_ref().and_then(|p| p.get("cart_id")), Some(&json!("c-1")));
    // A segment `buyers` entered by a and b, then left by b once b's order is refunded.
    let expr = kanta_segment::parse("orders >= 1").expect("parse");
    let seg = db
        .store
        .create_segment("buyers", "orders >= 1", &kanta_segment::parse("orders >= 9").expect("p"), NOW - 20 * DAY)
        .await
        .expect("create");
    db.store.refresh_segment(seg.id, &expr, NOW - 10 * DAY).await.expect("refresh");
    let refund = json!([{"id": "b1", "customer_id": "b", "time": t(-3), "amount": 10, "currency": "EUR", "status": "cancelled"}]);
    db.store.write_orders(&checked::<Order>(&refund.to_string()), at(NOW)).await.expect("refund");
    db.store.refresh_segment(seg.id, &expr, NOW - DAY).await.expect("refresh");
    let entered = read(Happening::SegmentEnter("buyers")).await;
    let left = read(Happening::SegmentExit("buyers")).await;
    assert_eq!(entered.iter().map(|h| (h.at.micros() - NOW) / DAY).collect::<Vec<_>>(), [-10, -10]);
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].at.micros() - NOW) / DAY, -1);
    assert!(read(Happening::SegmentEnter("nobody")).await.is_empty());
}

async fn earlier_runs_are_read_by_journey(db: TestDb) {
    customers(&db, &[("a", None), ("b", None)]).await;
    db.store.apply_journey("j", "{}", "{}", at(NOW)).await.expect("apply");
    db.store.apply_journey("other", "{}", "{}", at(NOW)).await.expect("apply");
    let rules = EntryRules { reentry: Reentry::Always, max_active: None, once_per_key: false };
    let context = json!({});
    for (journey, id, key) in [("j", "a", "k1"), ("j", "b", ""), ("other", "a", "")] {
        let customer = db.store.customer_key(id).await.expect("read").expect("customer");
        let run = NewRun {
            journey,
            version: 1,
            customer,
            key,
            step: "0",
            due_at: Some(at(NOW)),
            wait: None,
            context: &context,
            arm: RunArm::Treatment,
        };
        db.store.start_run(&run, &rules, at(NOW)).await.expect("start");
    }
    let (runs, next) = db.store.earlier_runs("j", None, 10).await.expect("runs");
    assert_eq!(next, None);
    let keys: Vec<(&str, Option<Timestamp>)> = runs.iter().map(|r| (r.key.as_str(), r.ended_at)).collect();
    assert_eq!(keys, [("k1", None), ("", None)]);
    assert!(runs.iter().all(|r| r.entered_at == at(NOW)));
    let (none, _) = db.store.marketing_sent(at(NOW - DAY), at(NOW + DAY), None, 10).await.expect("sent");
    assert!(none.is_empty(), "nothing was sent");
}
