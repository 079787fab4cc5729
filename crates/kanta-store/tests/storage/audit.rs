//! Tokens and idempotency keys.

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    tokens_are_found_by_hash_and_idempotent_responses_keep_the_first,
    idempotent_responses_expire_and_are_deleted,
);

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
