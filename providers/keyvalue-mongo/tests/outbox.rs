//! The outbox against real servers started by each test: FerretDB (keyvalue) and NATS
//! with JetStream (the test creates the event stream `TICKETING_EVENTS` on `events.>`, as
//! the messaging provider does, and reads what was published through a consumer of its
//! own). Servers are stopped and started again to show that events wait, and then go out.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::future::join_all;
use futures::{StreamExt as _, TryStreamExt as _};
use keyvalue_mongo::mongo::MongoStore;
use keyvalue_mongo::outbox::{self, Relay};
use mongodb::bson::{doc, Bson, Document};
use serde_json::{json, Value};
use ticketing_test_support::Server;

const STREAM: &str = "TICKETING_EVENTS";


/// NATS with JetStream, its store in the server's data directory so that the stream
/// outlives a restart.
fn start_nats() -> Server {
    Server::start("nats-server", |port, data| {
        vec!["-js".into(), "-a".into(), "127.0.0.1".into(), "-p".into(), port.to_string(), "-sd".into(), data.display().to_string()]
    })
}

struct World {
    ferret: Server,
    nats: Server,
    mongo_uri: String,
    db_name: String,
    /// A store with a relay, as the provider makes one for each link.
    store: MongoStore,
    relay: Relay,
    reader: Reader,
}

/// FerretDB, NATS, the event stream, a relay and a store on a database of its own.
async fn setup(name: &str) -> World {
    let ferret = Server::ferretdb();
    let nats = start_nats();
    let reader = Reader::create(nats.port).await;
    let relay = relay(nats.port).await;
    let mongo_uri = format!("mongodb://127.0.0.1:{}", ferret.port);
    let db_name = format!("outbox_{name}");
    let store = MongoStore::connect(&mongo_uri, &db_name).await.unwrap().with_relay(relay.clone());
    World { ferret, nats, mongo_uri, db_name, store, relay, reader }
}

/// A relay on a connection of its own, as one provider instance has.
async fn relay(nats_port: u16) -> Relay {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("nats://127.0.0.1:{nats_port}"))
        .await
        .unwrap();
    let relay = Relay::new(client, "events");
    until("the relay connects", || async { relay.connected() }).await;
    relay
}

impl World {
    fn db(&self) -> mongodb::Database {
        self.store.database().clone()
    }

    /// Sweeps this world's database every 200 ms, as the provider does, until dropped.
    fn sweep(&self, relay: &Relay) -> Sweeper {
        let db = self.db();
        Sweeper(tokio::spawn(outbox::sweep_forever(relay.clone(), Duration::from_millis(200), move || {
            let db = db.clone();
            async move { vec![db] }
        })))
    }

    async fn raw(&self, bucket: &str, key: &str) -> Option<Document> {
        self.db().collection::<Document>(bucket).find_one(doc! { "_id": key }).await.unwrap()
    }

    /// The ids pending in a stored document.
    async fn pending(&self, bucket: &str, key: &str) -> Vec<String> {
        let Some(document) = self.raw(bucket, key).await else { return Vec::new() };
        match document.get(outbox::FIELD) {
            Some(Bson::Array(entries)) => entries.iter().map(|e| e.as_document().unwrap().get_str("id").unwrap().to_string()).collect(),
            None => Vec::new(),
            Some(other) => panic!("unexpected _outbox {other:?}"),
        }
    }

    /// Waits until document `key` has no pending events.
    async fn until_cleared(&self, bucket: &str, key: &str) {
        until(&format!("{bucket}/{key} published and cleared"), || async {
            self.raw(bucket, key).await.is_some_and(|d| !d.contains_key(outbox::FIELD))
        })
        .await;
    }
}

struct Sweeper(tokio::task::JoinHandle<()>);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What was published: (subject, payload, Nats-Msg-Id).
type Published = (String, Value, String);

/// Reads the event stream through a durable consumer of its own.
struct Reader {
    nats_port: u16,
    seen: std::sync::Mutex<Vec<Published>>,
}

impl Reader {
    /// Creates the stream (as the messaging provider does) and the reading consumer.
    async fn create(nats_port: u16) -> Reader {
        let js = jetstream::new(async_nats::connect(format!("nats://127.0.0.1:{nats_port}")).await.unwrap());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["events.>".into()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .unwrap();
        stream
            .get_or_create_consumer(
                "reader",
                consumer::pull::Config { durable_name: Some("reader".into()), ack_policy: consumer::AckPolicy::None, ..Default::default() },
            )
            .await
            .unwrap();
        Reader { nats_port, seen: std::sync::Mutex::new(Vec::new()) }
    }

    /// Everything read so far, after reading what arrived meanwhile.
    async fn read(&self) -> Vec<Published> {
        let new = async {
            let js = jetstream::new(async_nats::connect(format!("nats://127.0.0.1:{}", self.nats_port)).await?);
            let consumer: consumer::PullConsumer = js.get_stream(STREAM).await?.get_consumer("reader").await?;
            let mut messages = consumer.fetch().max_messages(100).expires(Duration::from_millis(300)).messages().await?;
            let mut new = Vec::new();
            while let Some(message) = messages.next().await {
                let message = message?;
                let id = message.headers.as_ref().and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID)).map(|v| v.as_str().to_string()).unwrap_or_default();
                new.push((message.subject.to_string(), serde_json::from_slice(&message.payload)?, id));
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(new)
        };
        if let Ok(new) = new.await {
            self.seen.lock().unwrap().extend(new);
        }
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `count` events were published, and returns them.
    async fn wait_for(&self, count: usize) -> Vec<Published> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let seen = self.read().await;
            if seen.len() >= count {
                return seen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {count} events; saw {seen:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits up to 90 s for `done`.
async fn until<F, Fut>(what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An event id: 24 lowercase hex characters.
fn id(n: u32) -> String {
    format!("65a0000000000000{n:08x}")
}

/// A ticket value with the events announcing it.
fn ticket(version: u32, events: &[(&str, &str)]) -> Value {
    let mut value = json!({"id": "t1", "title": "concert", "price": 1050, "version": version});
    if !events.is_empty() {
        let outbox: Vec<Value> = events
            .iter()
            .map(|(id, subject)| json!({"id": id, "subject": subject, "payload": {"id": "t1", "price": 1050, "version": version}}))
            .collect();
        value["_outbox"] = json!(outbox);
    }
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

async fn get_json(store: &MongoStore, bucket: &str, key: &str) -> Value {
    serde_json::from_slice(&store.get(bucket, key).await.unwrap().unwrap()).unwrap()
}

#[tokio::test]
async fn a_stored_event_is_published_once_then_cleared() {
    let w = setup("publish").await;
    let e1 = id(1);
    w.store.set("tickets", "t1", &bytes(&ticket(0, &[(&e1, "ticket:created")]))).await.unwrap();

    // `get` never shows the outbox, pending or not.
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(0, &[]));

    let published = w.reader.wait_for(1).await;
    assert_eq!(published, vec![("events.ticket:created".to_string(), json!({"id": "t1", "price": 1050, "version": 0}), e1.clone())]);
    w.until_cleared("tickets", "t1").await;
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(0, &[]));
    let got = w.store.get_many("tickets", &["t1".to_string()]).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&got[0].as_ref().unwrap().1).unwrap(), ticket(0, &[]));

    // Nothing more comes, and the next plain write takes the fast path again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.reader.read().await.len(), 1);
    w.store.set("tickets", "t1", &bytes(&ticket(1, &[]))).await.unwrap();
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(1, &[]));
}

#[tokio::test]
async fn a_create_only_write_stores_and_announces_only_where_the_key_is_free() {
    let w = setup("create_only").await;
    let create = |version: u32, event: &str| {
        let mut value = ticket(version, &[(event, "ticket:created")]);
        value[outbox::CREATE_ONLY_FIELD] = json!(true);
        bytes(&value)
    };
    w.store.set("tickets", "t1", &create(0, &id(1))).await.unwrap();
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(0, &[]), "stored, without the flag");
    assert_eq!(w.reader.wait_for(1).await[0].2, id(1));
    w.until_cleared("tickets", "t1").await;

    // A later change, then the creation again (a redelivered event, a retried request).
    w.store.set("tickets", "t1", &bytes(&ticket(1, &[]))).await.unwrap();
    w.store.set("tickets", "t1", &create(0, &id(2))).await.unwrap();
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(1, &[]), "the stored value stays");
    assert!(w.pending("tickets", "t1").await.is_empty());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.reader.read().await.len(), 1, "the repeat announced nothing");
}

#[tokio::test]
async fn events_stored_while_nats_is_down_go_out_when_it_is_back_in_order() {
    let mut w = setup("nats_down").await;
    let _sweeper = w.sweep(&w.relay);
    w.nats.stop();
    until("the relay sees NATS gone", || async { !w.relay.connected() }).await;

    let (e1, e2) = (id(1), id(2));
    let started = Instant::now();
    w.store.set("tickets", "t1", &bytes(&ticket(0, &[(&e1, "ticket:created")]))).await.unwrap();
    w.store.set("tickets", "t1", &bytes(&ticket(1, &[(&e2, "ticket:updated")]))).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "set waited for NATS: {:?}", started.elapsed());

    // The second write carried the first event forward.
    assert_eq!(w.pending("tickets", "t1").await, vec![e1.clone(), e2.clone()]);
    assert_eq!(get_json(&w.store, "tickets", "t1").await, ticket(1, &[]));

    tokio::time::sleep(Duration::from_secs(2)).await; // sweeps fail meanwhile
    assert_eq!(w.pending("tickets", "t1").await.len(), 2);
    w.nats.spawn();

    let published = w.reader.wait_for(2).await;
    let got: Vec<(&str, &str, &Value)> = published.iter().map(|(s, p, i)| (s.as_str(), i.as_str(), p)).collect();
    assert_eq!(got, vec![
        ("events.ticket:created", e1.as_str(), &json!({"id": "t1", "price": 1050, "version": 0})),
        ("events.ticket:updated", e2.as_str(), &json!({"id": "t1", "price": 1050, "version": 1})),
    ]);
    w.until_cleared("tickets", "t1").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(w.reader.read().await.len(), 2);
}

/// The messaging provider creates the event stream; until it has, publishing fails and
/// the events wait.
#[tokio::test]
async fn events_wait_for_the_stream_to_exist() {
    let ferret = Server::ferretdb();
    let nats = start_nats();
    let relay = relay(nats.port).await;
    let store = MongoStore::connect(&format!("mongodb://127.0.0.1:{}", ferret.port), "outbox_stream").await.unwrap().with_relay(relay.clone());
    let db = store.database().clone();
    let _sweeper = Sweeper(tokio::spawn(outbox::sweep_forever(relay, Duration::from_millis(200), move || {
        let db = db.clone();
        async move { vec![db] }
    })));
    let e1 = id(1);
    store.set("tickets", "t1", &bytes(&ticket(0, &[(&e1, "ticket:created")]))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stored = store.database().collection::<Document>("tickets").find_one(doc! { "_id": "t1" }).await.unwrap().unwrap();
    assert_eq!(stored.get_array(outbox::FIELD).unwrap().len(), 1, "still pending");

    let reader = Reader::create(nats.port).await;
    let published = reader.wait_for(1).await;
    assert_eq!(published[0].2, e1);
}

#[tokio::test]
async fn plain_writes_keep_pending_events() {
    let ferret = Server::ferretdb();
    // No relay: the events stay pending.
    let store = MongoStore::connect(&format!("mongodb://127.0.0.1:{}", ferret.port), "outbox_plain").await.unwrap();
    let raw = |key: &'static str| {
        let db = store.database().clone();
        async move { db.collection::<Document>("tickets").find_one(doc! { "_id": key }).await.unwrap().unwrap() }
    };
    let pending = |document: &Document| -> Vec<String> {
        document.get_array(outbox::FIELD).map(|a| a.iter().map(|e| e.as_document().unwrap().get_str("id").unwrap().to_string()).collect()).unwrap_or_default()
    };
    let (e1, e2) = (id(1), id(2));
    store.set("tickets", "t1", &bytes(&ticket(0, &[(&e1, "ticket:created")]))).await.unwrap();

    store.set("tickets", "t1", &bytes(&ticket(1, &[]))).await.unwrap();
    let stored = raw("t1").await;
    assert_eq!(pending(&stored), vec![e1.clone()]);
    assert_eq!(stored.get_i64("version").unwrap(), 1);
    assert_eq!(get_json(&store, "tickets", "t1").await, ticket(1, &[]));

    // A batch write keeps them too, and writes the other keys.
    store.set_many("tickets", &[("t1".into(), bytes(&ticket(2, &[]))), ("t2".into(), br#"{"other":true}"#.to_vec())]).await.unwrap();
    let stored = raw("t1").await;
    assert_eq!(pending(&stored), vec![e1.clone()]);
    assert_eq!(stored.get_i64("version").unwrap(), 2);
    assert_eq!(get_json(&store, "tickets", "t2").await, json!({"other": true}));
    assert!(!raw("t2").await.contains_key(outbox::FIELD));

    // A retried set brings e1 again with e2: e1 is not added twice.
    store.set("tickets", "t1", &bytes(&ticket(3, &[(&e1, "ticket:created"), (&e2, "ticket:updated")]))).await.unwrap();
    assert_eq!(pending(&raw("t1").await), vec![e1.clone(), e2.clone()]);
    // A binary value keeps them as well.
    store.set("tickets", "t1", b"\x00bytes").await.unwrap();
    assert_eq!(pending(&raw("t1").await), vec![e1.clone(), e2.clone()]);
    assert_eq!(store.get("tickets", "t1").await.unwrap().unwrap(), b"\x00bytes");
    // So does an increment.
    store.set("counters", "n", &bytes(&json!({"_outbox": [{"id": id(3), "subject": "n:counted", "payload": {}}]}))).await.unwrap();
    store.increment("counters", "n", 2).await.unwrap();
    let counter = store.database().collection::<Document>("counters").find_one(doc! { "_id": "n" }).await.unwrap().unwrap();
    assert_eq!(counter.get_array(outbox::FIELD).unwrap().len(), 1);

    // A malformed outbox is refused, and nothing is written.
    assert!(store.set("tickets", "t3", br#"{"_outbox":[{"id":"nope"}]}"#).await.is_err());
    assert!(!store.exists("tickets", "t3").await.unwrap());
}

/// The operators the outbox relies on, checked on the server itself: FerretDB v1 does
/// not implement all of MongoDB (its `$pull`, for one, only removes equal values).
#[tokio::test]
async fn the_server_supports_the_queries_the_outbox_uses() {
    let ferret = Server::ferretdb();
    let client = mongodb::Client::with_uri_str(format!("mongodb://127.0.0.1:{}", ferret.port)).await.unwrap();
    let docs = client.database("outbox_ops").collection::<Document>("d");
    let entries = Bson::Array(vec![Bson::Document(doc! { "id": id(1), "subject": "s", "payload": { "n": 1_i64, "x": 1.5 } })]);
    docs.insert_one(doc! { "_id": "pending", "a": 1, "_outbox": entries.clone() }).await.unwrap();

    // Every document query is by `_id` alone: the stored `_outbox` read with a projection,
    // a replacing upsert, `$set` and `$unset` of the field.
    let stored = docs.find_one(doc! { "_id": "pending" }).projection(doc! { "_outbox": 1 }).await.unwrap().unwrap();
    assert_eq!(stored.get("_outbox"), Some(&entries), "the array comes back as written, so Rust can compare it");
    assert!(!stored.contains_key("a"), "the projection keeps only `_id` and `_outbox`");
    let r = docs.replace_one(doc! { "_id": "new" }, doc! { "a": 3 }).upsert(true).await.unwrap();
    assert!(r.upserted_id.is_some());
    let r = docs.replace_one(doc! { "_id": "pending" }, doc! { "a": 2, "_outbox": entries.clone() }).upsert(true).await.unwrap();
    assert_eq!((r.matched_count, r.upserted_id), (1, None));
    let other = Bson::Array(vec![Bson::Document(doc! { "id": id(2), "subject": "s", "payload": {} })]);
    let two = Bson::Array(vec![entries.as_array().unwrap()[0].clone(), other.as_array().unwrap()[0].clone()]);
    assert_eq!(docs.update_one(doc! { "_id": "pending" }, doc! { "$set": { "_outbox": two.clone() } }).await.unwrap().matched_count, 1);
    assert_eq!(docs.find_one(doc! { "_id": "pending" }).await.unwrap().unwrap().get("_outbox"), Some(&two));
    assert_eq!(docs.update_one(doc! { "_id": "pending" }, doc! { "$unset": { "_outbox": "" } }).await.unwrap().matched_count, 1);
    let stored = docs.find_one(doc! { "_id": "pending" }).await.unwrap().unwrap();
    assert_eq!(stored, doc! { "_id": "pending", "a": 2 });

    // The scan: every collection, then the documents holding an `_outbox`, `_id`s only.
    docs.update_one(doc! { "_id": "pending" }, doc! { "$set": { "_outbox": entries.clone() } }).await.unwrap();
    let names = client.database("outbox_ops").list_collection_names().await.unwrap();
    assert_eq!(names, vec!["d".to_string()]);
    let found: Vec<Document> = docs.find(doc! { "_outbox": { "$exists": true } }).projection(doc! { "_id": 1 }).await.unwrap().try_collect().await.unwrap();
    assert_eq!(found, vec![doc! { "_id": "pending" }]);
}

/// As if a provider died right after writing: documents with pending events, written
/// directly. A sweep that scans publishes them; one that does not scan only relays what
/// its relay remembered (nothing here); the provider's loop scans first.
#[tokio::test]
async fn a_scan_finishes_what_a_dead_provider_left() {
    let w = setup("crash").await;
    let db = w.db();
    let (e1, e2, e3) = (id(1), id(2), id(3));
    let event = |id: &str, subject: &str, key: &str| doc! { "id": id, "subject": subject, "payload": { "id": key, "price": 1050_i64 } };
    let tickets = db.collection::<Document>("tickets");
    tickets.insert_one(doc! { "_id": "t1", "title": "x", "_outbox": [event(&e1, "ticket:created", "t1"), event(&e2, "ticket:updated", "t1")] }).await.unwrap();
    tickets.insert_one(doc! { "_id": "t2", "title": "plain" }).await.unwrap();
    db.collection::<Document>("orders").insert_one(doc! { "_id": "o1", "_outbox": [event(&e3, "order:created", "o1")] }).await.unwrap();

    assert_eq!(outbox::sweep(&w.relay, &db, false).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.reader.read().await.is_empty(), "nothing was remembered, and there was no scan");

    let _sweeper = w.sweep(&w.relay);
    let mut published = w.reader.wait_for(3).await;
    published.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(published, vec![
        ("events.ticket:created".to_string(), json!({"id": "t1", "price": 1050}), e1.clone()),
        ("events.ticket:updated".to_string(), json!({"id": "t1", "price": 1050}), e2.clone()),
        ("events.order:created".to_string(), json!({"id": "o1", "price": 1050}), e3.clone()),
    ]);
    w.until_cleared("tickets", "t1").await;
    w.until_cleared("orders", "o1").await;
    assert_eq!(get_json(&w.store, "tickets", "t1").await, json!({"title": "x"}));

    // Later sweeps publish nothing twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.reader.read().await.len(), 3);
}

/// More documents left to the sweep than the relay remembers: it remembers some, and
/// the next sweep scans for the rest; each event goes out once.
#[tokio::test]
async fn a_backlog_past_what_the_relay_remembers_is_found_by_a_scan() {
    let w = setup("backlog").await;
    let small = relay(w.nats.port).await.with_max_waiting(0).with_max_remembered(5);
    let store = MongoStore::connect(&w.mongo_uri, &w.db_name).await.unwrap().with_relay(small.clone());
    let _sweeper = w.sweep(&small); // its first sweep scans while nothing is there yet
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..40 {
        store.set("tickets", &format!("t{n}"), &bytes(&ticket(0, &[(&id(n), "ticket:created")]))).await.unwrap();
    }
    let published = w.reader.wait_for(40).await;
    let mut ids: Vec<String> = published.iter().map(|(_, _, id)| id.clone()).collect();
    ids.sort();
    assert_eq!(ids, (0..40).map(id).collect::<Vec<_>>(), "each event once");
    for n in 0..40 {
        w.until_cleared("tickets", &format!("t{n}")).await;
    }
}

/// With no room for relays started by writes, every write leaves its events to the
/// sweep: they all still go out, once each.
#[tokio::test]
async fn writes_past_the_waiting_relays_limit_leave_their_events_to_the_sweep() {
    let w = setup("relay_limit").await;
    let full = relay(w.nats.port).await.with_max_waiting(0);
    let store = MongoStore::connect(&w.mongo_uri, &w.db_name).await.unwrap().with_relay(full.clone());
    for n in 0..30 {
        store.set("tickets", &format!("t{n}"), &bytes(&ticket(0, &[(&id(n), "ticket:created")]))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.reader.read().await.is_empty(), "no relay was started");

    // The relay remembered them all: a sweep without a scan finds them.
    assert_eq!(outbox::sweep(&full, &w.db(), false).await.unwrap(), 0);
    let published = w.reader.wait_for(30).await;
    let mut ids: Vec<String> = published.iter().map(|(_, _, id)| id.clone()).collect();
    ids.sort();
    assert_eq!(ids, (0..30).map(id).collect::<Vec<_>>(), "each event once");
    for n in 0..30 {
        w.until_cleared("tickets", &format!("t{n}")).await;
    }
}

#[tokio::test]
async fn events_pending_across_a_database_restart_still_go_out() {
    let mut w = setup("ferret_restart").await;
    let _sweeper = w.sweep(&w.relay);
    w.nats.stop();
    until("the relay sees NATS gone", || async { !w.relay.connected() }).await;
    let e1 = id(1);
    w.store.set("tickets", "t1", &bytes(&ticket(0, &[(&e1, "ticket:created")]))).await.unwrap();

    w.ferret.stop();
    w.nats.spawn();
    tokio::time::sleep(Duration::from_secs(3)).await; // sweeps fail: the database is down
    assert!(w.reader.read().await.is_empty());
    w.ferret.spawn();

    let published = w.reader.wait_for(1).await;
    assert_eq!(published[0].2, e1);
    w.until_cleared("tickets", "t1").await;
    assert_eq!(w.reader.read().await.len(), 1);
}

/// Two hundred writers of one key at once, half of them with an event, half plain, and
/// two relays sweeping (as two provider instances would): every event goes out, once.
/// (With plain writes not holding the key's lock, FerretDB lost events here: it checks a
/// write's filter and applies the write in two steps.)
#[tokio::test]
async fn concurrent_writers_lose_no_event() {
    concurrent_writers("concurrent", None).await;
}

/// The same with the writes taking turns (`writes_at_once = 1`, as for FerretDB on SQLite).
#[tokio::test]
async fn concurrent_writers_taking_turns_lose_no_event() {
    concurrent_writers("turns", Some(1)).await;
}

async fn concurrent_writers(name: &str, writes_at_once: Option<usize>) {
    let w = setup(name).await;
    keyvalue_mongo::write_gate::limit(&w.db_name, writes_at_once);
    let second = relay(w.nats.port).await;
    let _sweepers = (w.sweep(&w.relay), w.sweep(&second));
    let other = MongoStore::connect(&w.mongo_uri, &w.db_name).await.unwrap().with_relay(second.clone());
    let writes = (0..200u32).map(|n| {
        let store = if n % 2 == 0 { w.store.clone() } else { other.clone() };
        async move {
            let value = if n % 2 == 0 { ticket(n, &[(&id(n), "ticket:updated")]) } else { ticket(n, &[]) };
            store.set("tickets", "t1", &bytes(&value)).await
        }
    });
    let failures: Vec<String> = join_all(writes).await.into_iter().filter_map(|r| r.err().map(|e| format!("{e:#}"))).collect();
    assert!(failures.is_empty(), "{failures:?}");

    w.reader.wait_for(100).await;
    w.until_cleared("tickets", "t1").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let published = w.reader.read().await;
    let mut ids: Vec<String> = published.iter().map(|(_, _, id)| id.clone()).collect();
    ids.sort();
    assert_eq!(ids, (0..200u32).step_by(2).map(id).collect::<Vec<_>>(), "each event once");
}
