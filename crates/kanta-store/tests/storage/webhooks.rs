//! Webhooks: the outbox, attempts, pauses.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    webhook_deliveries_queue_once_and_record_attempts_and_pauses,
);

async fn webhook_deliveries_queue_once_and_record_attempts_and_pauses(db: TestDb) {
    use kanta_store::{Attempt, NewDelivery};
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"w1","customer_id":"ann","time":"2024-10-20T10:00:00Z","amount":"300","currency":"EUR"},
      {"id":"w2","customer_id":"bob","time":"2024-10-21T10:00:00Z","amount":"40","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("write");
    // Transitions recorded before an endpoint exists are history it does not get.
    let expr = kanta_segment::parse("revenue >= 100").expect("valid");
    let seg = db.store.create_segment("big", "revenue >= 100", &expr, NOW).await.expect("create");
    let more: Vec<Order> =
        checked(r#"[{"id":"w3","customer_id":"bob","time":"2024-10-22T10:00:00Z","amount":"80","currency":"EUR"}]"#);
    db.store.write_orders(&more, at(NOW)).await.expect("write");
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
    db.store.write_orders(&refund, at(NOW)).await.expect("write");
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
