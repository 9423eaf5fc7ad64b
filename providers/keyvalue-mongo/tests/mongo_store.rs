//! MongoStore against a real server: FerretDB started by the test itself (binary from
//! `./ticketing install`), or the MongoDB at `MONGODB_URL` when that is set.

use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::TryStreamExt as _;
use keyvalue_mongo::mongo::{MongoStore, VALUE_FIELD};
use mongodb::bson::{doc, Bson, Document};
use ticketing_test_support::Server;


/// The server under test and a store on a database of its own.
async fn setup(name: &str) -> (Option<Server>, MongoStore) {
    let (ferret, uri) = match std::env::var("MONGODB_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let f = Server::ferretdb();
            let uri = format!("mongodb://127.0.0.1:{}", f.port);
            (Some(f), uri)
        }
    };
    let db = format!("kvtest_{name}_{}", std::process::id());
    let store = MongoStore::connect(&uri, &db).await.unwrap();
    store.database().drop().await.ok();
    (ferret, store)
}

#[tokio::test]
async fn store_operations() {
    let (_ferret, store) = setup("store").await;
    assert_eq!(store.get("b", "missing").await.unwrap(), None);
    assert!(!store.exists("b", "k").await.unwrap());

    store.set("b", "k", b"\x00binary\xff").await.unwrap();
    assert_eq!(store.get("b", "k").await.unwrap().as_deref(), Some(&b"\x00binary\xff"[..]));
    assert!(store.exists("b", "k").await.unwrap());

    store.set("b", "k", b"replaced").await.unwrap();
    assert_eq!(store.get("b", "k").await.unwrap().as_deref(), Some(&b"replaced"[..]));

    store.delete("b", "k").await.unwrap();
    assert!(!store.exists("b", "k").await.unwrap());
    store.delete("b", "k").await.unwrap(); // deleting a missing key is fine
}

#[tokio::test]
async fn json_objects_are_real_documents() {
    let (_ferret, store) = setup("docs").await;
    let user = br#"{"id":"5ec00000abababababababab","email":"a@b.com","price":10.5,"version":3}"#;
    store.set("users", "a@b.com", user).await.unwrap();

    // Visible to any Mongo client as an ordinary document.
    let raw = store.database().collection::<Document>("users").find_one(doc! { "email": "a@b.com" }).await.unwrap().unwrap();
    assert_eq!(raw.get_str("_id").unwrap(), "a@b.com");
    assert_eq!(raw.get_f64("price").unwrap(), 10.5);
    assert!(raw.get(VALUE_FIELD).is_none());

    let back: serde_json::Value = serde_json::from_slice(&store.get("users", "a@b.com").await.unwrap().unwrap()).unwrap();
    assert_eq!(back, serde_json::from_slice::<serde_json::Value>(user).unwrap());
}

#[tokio::test]
async fn list_keys_pages_with_the_cursor() {
    let (_ferret, store) = setup("list").await;
    let store = store.with_page_size(3);
    for i in 0..7 {
        store.set("b", &format!("key{i}"), b"v").await.unwrap();
    }
    let mut keys = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.list_keys("b", cursor).await.unwrap();
        assert!(page.len() <= 3);
        keys.extend(page);
        pages += 1;
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(keys, (0..7).map(|i| format!("key{i}")).collect::<Vec<_>>());
    assert_eq!(store.list_keys("empty", None).await.unwrap(), (vec![], None));
}

#[tokio::test]
async fn hundred_concurrent_increments_sum_exactly() {
    let (_ferret, store) = setup("incr").await;
    let results = join_all((0..100).map(|_| {
        let store = store.clone();
        async move { store.increment("counters", "hits", 1).await.unwrap() }
    }))
    .await;
    let mut seen = results.clone();
    seen.sort();
    assert_eq!(seen, (1..=100).collect::<Vec<u64>>(), "every caller saw a distinct value");
    assert_eq!(store.increment("counters", "hits", 0).await.unwrap(), 100);
    assert_eq!(store.get("counters", "hits").await.unwrap().as_deref(), Some(&b"100"[..]));
    let raw = store.database().collection::<Document>("counters").find_one(doc! { "_id": "hits" }).await.unwrap().unwrap();
    assert!(matches!(raw.get(VALUE_FIELD), Some(Bson::Int64(100)) | Some(Bson::Int32(100))));
}

#[tokio::test]
async fn increment_of_a_non_counter_is_an_error() {
    let (_ferret, store) = setup("incr_bad").await;
    store.set("b", "k", br#"{"a":1}"#).await.unwrap();
    store.set("b", "bin", b"bytes").await.unwrap();
    assert!(store.increment("b", "bin", 1).await.is_err());
}

#[tokio::test]
async fn batch_operations() {
    let (_ferret, store) = setup("batch").await;
    let entries: Vec<(String, Vec<u8>)> = vec![
        ("a".into(), br#"{"n":1}"#.to_vec()),
        ("b".into(), b"two".to_vec()),
        ("c".into(), b"three".to_vec()),
    ];
    store.set_many("b", &entries).await.unwrap();
    store.set_many("b", &[("b".into(), b"TWO".to_vec())]).await.unwrap(); // upserts replace

    let keys: Vec<String> = ["c", "missing", "a", "b"].iter().map(|s| s.to_string()).collect();
    let got = store.get_many("b", &keys).await.unwrap();
    assert_eq!(got[0], Some(("c".into(), b"three".to_vec())));
    assert_eq!(got[1], None);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&got[2].as_ref().unwrap().1).unwrap(), serde_json::json!({"n": 1}));
    assert_eq!(got[3], Some(("b".into(), b"TWO".to_vec())));

    store.delete_many("b", &["a".into(), "c".into()]).await.unwrap();
    assert_eq!(store.list_keys("b", None).await.unwrap().0, vec!["b".to_string()]);
    assert!(store.get_many("b", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn survives_a_database_restart() {
    if std::env::var("MONGODB_URL").is_ok() {
        return; // we can only restart the server we started
    }
    let (ferret, store) = setup("restart").await;
    let mut ferret = ferret.unwrap();
    store.set("b", "before", b"kept").await.unwrap();

    ferret.stop();
    assert!(store.get("b", "before").await.is_err(), "the server is down");
    ferret.spawn();

    // The same store (same pool) reconnects by itself; data persisted on disk. How soon
    // the driver notices the server is back varies (its monitor backs off while the
    // server is down; one CI run on a busy machine needed more than one 10 s selection).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let kept = loop {
        match store.get("b", "before").await {
            Ok(kept) => break kept,
            Err(e) if std::time::Instant::now() < deadline => eprintln!("not reconnected yet: {e}"),
            Err(e) => panic!("the store did not reconnect within 60 s: {e}"),
        }
    };
    assert_eq!(kept.as_deref(), Some(&b"kept"[..]));
    store.set("b", "after", b"new").await.unwrap();
    assert_eq!(store.increment("c", "n", 2).await.unwrap(), 2);
}

/// Twenty sign-ups of one e-mail at once, as the auth service does them: exactly one
/// claim wins and stores the user; nobody waits on anybody for long.
#[tokio::test]
async fn concurrent_claims_have_one_winner_and_finish_quickly() {
    let (_ferret, store) = setup("claims").await;
    for round in 0..5 {
        let email = format!("user{round}@test.com");
        let started = Instant::now();
        let outcomes = join_all((0..20).map(|_| {
            let store = store.clone();
            let email = email.clone();
            async move {
                if store.exists("users", &email).await.unwrap() {
                    return false;
                }
                if store.increment("claims", &email, 1).await.unwrap() != 1 {
                    return false;
                }
                store.set("users", &email, br#"{"id":"x"}"#).await.unwrap();
                true
            }
        }))
        .await;
        assert_eq!(outcomes.iter().filter(|won| **won).count(), 1);
        assert!(started.elapsed() < Duration::from_secs(5), "round {round} took {:?}", started.elapsed());
        assert!(store.exists("users", &email).await.unwrap());
    }
}

/// Twenty sign-ups of different e-mails at once: all succeed, quickly.
#[tokio::test]
async fn concurrent_writes_to_different_keys_finish_quickly() {
    let (_ferret, store) = setup("distinct").await;
    for round in 0..5 {
        let started = Instant::now();
        join_all((0..20).map(|i| {
            let store = store.clone();
            let email = format!("user{round}-{i}@test.com");
            async move {
                assert!(!store.exists("users", &email).await.unwrap());
                assert_eq!(store.increment("claims", &email, 1).await.unwrap(), 1);
                store.set("users", &email, br#"{"id":"x","passwordHash":"$argon2id$v=19$m=19456,t=2,p=1$abc"}"#).await.unwrap();
            }
        }))
        .await;
        assert!(started.elapsed() < Duration::from_secs(5), "round {round} took {:?}", started.elapsed());
    }
}

/// Twenty first sets of one new key at once (requests racing for a lease each stamp its
/// time before claiming it): every one succeeds, the key holds one of the values.
#[tokio::test]
async fn concurrent_sets_of_one_new_key_all_succeed() {
    let (_ferret, store) = setup("sets").await;
    for round in 0..5 {
        let key = format!("lease{round}");
        let results = join_all((0..20).map(|i| {
            let store = store.clone();
            let key = key.clone();
            async move { store.set("times", &key, i.to_string().as_bytes()).await }
        }))
        .await;
        let failures: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|e| e.to_string())).collect();
        assert!(failures.is_empty(), "round {round}: {failures:?}");
        let value = String::from_utf8(store.get("times", &key).await.unwrap().unwrap()).unwrap();
        assert!((0..20).any(|i| value == i.to_string()), "{value}");
    }
}

/// Every keyvalue call names its document by `_id`, alone or with a condition on another
/// field (the outbox's compare-and-set writes: `{_id, _outbox: ...}`), so those lookups
/// must use the `_id` index, not read the whole collection. FerretDB v1 on SQLite did not
/// until our patches (patches/README.md): its query plan (`explain`) said `SCAN` rather
/// than `SEARCH ... USING INDEX`. On PostgreSQL (`TICKETING_TEST_POSTGRES`) neither did
/// FerretDB's own pushdown, whose `_jsonb->$1 @> $2` no index answers: the plan read
/// `Seq Scan`, with our patch `Index Scan` (or a bitmap of one). On MongoDB the plan reads
/// `IDHACK` or `IXSCAN`.
#[tokio::test]
async fn lookups_by_key_use_the_id_index() {
    let (ferret, store) = setup("index").await;
    // Enough documents that PostgreSQL's planner prefers its index to reading the table.
    let others: Vec<(String, Vec<u8>)> = (0..300).map(|i| (format!("other-{i}"), br#"{"n":0}"#.to_vec())).collect();
    store.set_many("indexed", &others).await.unwrap();
    for key in ["a", "b", "c"] {
        store.set("indexed", key, br#"{"n":1}"#).await.unwrap();
    }
    let on_postgres = std::env::var_os("TICKETING_TEST_POSTGRES").is_some();
    let filters = [
        doc! { "_id": "b" },
        doc! { "_id": "b", "_outbox": { "$exists": false } },
        doc! { "n": 1, "_id": "b" },
        doc! { "_id": { "$in": ["c", "a", "nope"] } },
    ];
    for filter in filters {
        let explained = store
            .database()
            .run_command(doc! { "explain": { "find": "indexed", "filter": filter.clone() } })
            .await
            .unwrap();
        let plan = format!("{:?}", explained.get_document("queryPlanner").unwrap());
        if ferret.is_some() && on_postgres {
            assert!(plan.contains("Index Scan") && !plan.contains("Seq Scan"), "FerretDB scans for {filter}: {plan}");
        } else if ferret.is_some() {
            assert!(plan.contains("USING INDEX"), "FerretDB scans for {filter}: {plan}");
        } else {
            assert!(plan.contains("IDHACK") || plan.contains("IXSCAN"), "{filter}: {plan}");
        }
    }
    let found = |filter| async {
        let documents: Vec<Document> =
            store.database().collection::<Document>("indexed").find(filter).await.unwrap().try_collect().await.unwrap();
        documents.len()
    };
    assert_eq!(found(doc! { "_id": "b", "n": 1 }).await, 1);
    assert_eq!(found(doc! { "_id": "b", "n": 2 }).await, 0, "the rest of the filter still applies");
    assert_eq!(found(doc! { "_id": { "$in": ["c", "a", "nope"] } }).await, 2);
    assert_eq!(found(doc! { "_id": { "$in": ["c", "a"] }, "n": 2 }).await, 0);
    assert_eq!(found(doc! { "_id": { "$in": [1, "a"] } }).await, 1, "a list that is not all strings is not pushed down, still found");
}
