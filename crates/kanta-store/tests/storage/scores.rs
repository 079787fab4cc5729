//! Scores: runs, stage changes, exact round trips.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    scores_replace_the_previous_run_and_record_stage_changes,
    score_floats_and_texts_round_trip_exactly,
    scored_at_is_the_latest_run_that_wrote_scores,
);

async fn scores_replace_the_previous_run_and_record_stage_changes(db: TestDb) {
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
    db.store.write_orders(&orders, at(NOW)).await.expect("orders");
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

/// `scored_at` (what the 360 view shows beside the scores) passes over runs that stopped early:
/// they wrote no scores.
async fn scored_at_is_the_latest_run_that_wrote_scores(db: TestDb) {
    assert_eq!(db.store.scored_at().await.expect("read"), None, "before the first run");
    let day = 86_400_000_000;
    db.store.record_unfinished_run(&run(NOW), "cancelled").await.expect("a cancelled run");
    assert_eq!(db.store.scored_at().await.expect("read"), None, "a cancelled run wrote no scores");
    let first = db.store.write_scores(&run(NOW + day), &[]).await.expect("a run");
    assert_eq!(db.store.scored_at().await.expect("read"), Some(first.finished_at.clone()));
    let cancelled = db.store.record_unfinished_run(&run(NOW + 2 * day), "cancelled").await.expect("cancelled");
    assert_ne!(cancelled.finished_at, first.finished_at);
    assert_eq!(
        db.store.scored_at().await.expect("read"),
        Some(first.finished_at),
        "the later cancelled run is passed over"
    );
}
