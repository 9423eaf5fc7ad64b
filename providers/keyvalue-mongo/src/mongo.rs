//! Keyvalue storage on MongoDB.
//!
//! A bucket is a collection; a key is a document's `_id`. A value that is a JSON object
//! is stored as that document's fields, so operators can query it with Mongo tools;
//! any other value is kept whole in the `_kv` field (binary), and counters made by
//! `increment` are an integer `_kv`.
//!
//! Every query names its documents by `_id` (`{_id: key}`, `{_id: key, ...}` for a
//! compare-and-set, `{_id: {$in: keys}}` for `get_many`). FerretDB v1 on SQLite looks
//! those up in its `_id` index (once patched: patches/README.md; the published v1.24.2
//! scanned for all three), but scans and decodes the whole collection for any other
//! filter, such as `{bucket: ...}`: a query on such a filter costs time in proportion to
//! the collection (30 ms per ticket created with a few thousand tickets, before), so
//! there is none on a request's way. FerretDB also applies a conditional write in two steps (find, then
//! write), so the writes that depend on what is stored (keeping pending events,
//! increments) hold the key's lock in this process ([`document_lock`]). That makes one
//! serving instance per database the rule: every host runs one, and the one holding the
//! lease serves while the others stand by ([`crate::lease`]). (Increments are also
//! locked because FerretDB's `$inc` hands the same new value to concurrent callers.)
//! Where a link says so (`writes_at_once`), writes to its database also take turns
//! ([`crate::write_gate`]).
//!
//! A value may carry events to publish in its `_outbox` field (see [`crate::outbox`]):
//! they are kept in the document until published, every write (`set`, `set_many`)
//! carries them forward, and reads never show them. A value with `"_createOnly": true`
//! is inserted, only if its key holds nothing yet ([`outbox::CREATE_ONLY_FIELD`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use futures::TryStreamExt as _;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, Database};

use crate::key_index::{self, Change};
use crate::outbox::{self, Relay};
use crate::write_gate;

/// Field holding a value that is not a JSON object.
pub const VALUE_FIELD: &str = "_kv";
/// Keys returned per `list-keys` call.
pub const DEFAULT_PAGE_SIZE: u64 = 1000;
/// Keys `get_many` looks up with one query (FerretDB, patched, pushes down up to 1000).
const KEYS_PER_LOOKUP: usize = 1000;
/// How often an upsert that lost a race on a new `_id` is retried.
pub(crate) const UPSERT_RETRIES: usize = 5;

#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    /// Where the database is (URI and name): links naming the same one share its sweep.
    location: String,
    page_size: u64,
    /// Publishes a document's events right after `set` stored them; without one they wait
    /// for a sweep.
    relay: Option<Relay>,
}

impl MongoStore {
    /// Connects lazily: the driver connects on first use and reconnects by itself
    /// after the server restarts.
    pub async fn connect(uri: &str, database: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(uri).await.context("invalid MongoDB URI")?;
        options.app_name = Some("ticketing-keyvalue-mongo".into());
        options.server_selection_timeout = Some(Duration::from_secs(10));
        options.connect_timeout = Some(Duration::from_secs(5));
        options.retry_writes = Some(true);
        options.retry_reads = Some(true);
        let client = Client::with_options(options).context("failed to create the MongoDB client")?;
        let db = client.database(database);
        Ok(Self { client, db, location: format!("{uri}\n{database}"), page_size: DEFAULT_PAGE_SIZE, relay: None })
    }

    pub fn with_relay(mut self, relay: Relay) -> Self {
        self.relay = Some(relay);
        self
    }

    pub fn with_page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Closes the connection pool (on link deletion).
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Equal for stores on the same database of the same server (holds the URI: never log it).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn collection(&self, bucket: &str) -> Result<Collection<Document>> {
        Ok(self.db.collection(&collection_name(bucket)?))
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let found = self.collection(bucket)?.find_one(doc! { "_id": key }).await?;
        found.map(decode).transpose()
    }

    /// Stores `value` (if it is create-only, only where the key holds nothing yet); the
    /// events of its `_outbox` field, if any, are published once it is stored (the relay
    /// is started without waiting).
    pub async fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<()> {
        let outbox::Incoming { entity, mut events, create_only } = outbox::split(value)?;
        if !events.is_empty() {
            // Only writes that announce something carry the trace on (most writes do not).
            let trace = current_traceparent();
            for event in &mut events {
                event.trace.clone_from(&trace);
            }
        }
        let collection = self.collection(bucket)?;
        let document = encode(key, &entity);
        let written = async {
            let lock = document_lock(self.db.name(), collection.name(), key);
            let _held = lock.lock().await;
            if create_only {
                outbox::insert_new(&collection, document, &events).await
            } else {
                outbox::replace_keeping_pending(&collection, key, document, &events).await
            }
        }
        .await;
        self.note(&collection, &[key], written.is_ok(), Change::Stored).await;
        let Some(relay) = self.relay.as_ref().filter(|_| !events.is_empty()) else { return written.map(drop) };
        match written {
            Ok(written) if written.is_empty() => {} // create-only, and the key was taken
            Ok(written) => relay.spawn(self.db.clone(), collection.name().to_string(), key.to_string(), written),
            // It may have been stored all the same (only its answer lost): the sweep looks.
            Err(e) => {
                relay.remember(self.db.name(), collection.name().to_string(), key.to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let collection = self.collection(bucket)?;
        let deleted = write_gate::write(self.db.name(), collection.delete_one(doc! { "_id": key })).await;
        self.note(&collection, &[key], deleted.is_ok(), Change::Deleted).await;
        deleted?;
        Ok(())
    }

    /// Keeps the collection's key index (if it was listed) current after a write of `keys`.
    async fn note(&self, collection: &Collection<Document>, keys: &[&str], succeeded: bool, change: Change) {
        let index = key_index::of(self.db.name(), collection.name());
        key_index::written(&index, keys, if succeeded { change } else { Change::Unknown }).await;
    }

    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        let found = self
            .collection(bucket)?
            .find_one(doc! { "_id": key })
            .projection(doc! { "_id": 1 })
            .await?;
        Ok(found.is_some())
    }

    /// One page of keys in `_id` order; the cursor is the offset of the next page. Served
    /// from the collection's key index, read from the database at the first listing (see
    /// [`crate::key_index`]).
    pub async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<(Vec<String>, Option<u64>)> {
        let collection = self.collection(bucket)?;
        let index = key_index::of(self.db.name(), collection.name());
        let mut keys = index.lock().await;
        if keys.is_none() {
            let found: Vec<Document> = collection.find(doc! {}).projection(doc! { "_id": 1 }).await?.try_collect().await?;
            *keys = Some(found.iter().filter_map(key_of).collect());
        }
        let keys = keys.as_ref().expect("just read");
        Ok(key_index::page(keys, cursor.unwrap_or(0), self.page_size))
    }

    /// Atomically adds `delta` (`$inc` with upsert) and returns the new value.
    pub async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64> {
        let collection = self.collection(bucket)?;
        let counted = self.add_to_counter(&collection, key, delta).await;
        self.note(&collection, &[key], counted.is_ok(), Change::Stored).await;
        counted
    }

    async fn add_to_counter(&self, collection: &Collection<Document>, key: &str, delta: u64) -> Result<u64> {
        let delta = i64::try_from(delta).context("increment delta too large")?;
        let lock = document_lock(self.db.name(), collection.name(), key);
        let _serialized = lock.lock().await;
        let mut attempt = 0;
        loop {
            let increment = collection
                .find_one_and_update(doc! { "_id": key }, doc! { "$inc": { VALUE_FIELD: delta } })
                .upsert(true)
                .return_document(ReturnDocument::After);
            let result = write_gate::write(self.db.name(), increment).await;
            match result {
                Ok(Some(document)) => {
                    let value = match document.get(VALUE_FIELD) {
                        Some(Bson::Int64(n)) => *n,
                        Some(Bson::Int32(n)) => i64::from(*n),
                        Some(Bson::Double(n)) => *n as i64,
                        other => return Err(anyhow!("`{key}` does not hold a counter ({other:?})")),
                    };
                    return u64::try_from(value).context("counter is negative");
                }
                Ok(None) => return Err(anyhow!("upsert returned no document")),
                // Two first increments of a new key can both try to insert it; the
                // loser sees a duplicate key error and retries as an update.
                Err(e) if is_duplicate_key(&e) && attempt < UPSERT_RETRIES => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The values of `keys`, in their order: one `{_id: {$in: [...]}}` query per
    /// [`KEYS_PER_LOOKUP`] keys (a page of 20 tickets cost FerretDB 5.0 ms of CPU as 20
    /// lookups, 1.2 ms as one).
    pub async fn get_many(&self, bucket: &str, keys: &[String]) -> Result<Vec<Option<(String, Vec<u8>)>>> {
        let collection = self.collection(bucket)?;
        let mut found: HashMap<String, Vec<u8>> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_LOOKUP) {
            let mut documents = collection.find(doc! { "_id": { "$in": chunk } }).await?;
            while let Some(document) = documents.try_next().await? {
                if let Some(key) = key_of(&document) {
                    found.insert(key, decode(document)?);
                }
            }
        }
        Ok(keys.iter().map(|key| found.get(key).map(|value| (key.clone(), value.clone()))).collect())
    }


    /// Each value written by [`Self::set`] (which keeps pending events), in order.
    pub async fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (key, value) in entries {
            self.set(bucket, key, value).await?;
        }
        Ok(())
    }

    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let collection = self.collection(bucket)?;
        let deleted = write_gate::write(self.db.name(), collection.delete_many(doc! { "_id": { "$in": keys } })).await;
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.note(&collection, &names, deleted.is_ok(), Change::Deleted).await;
        deleted?;
        Ok(())
    }
}

/// One async lock per key, created on demand and dropped once nobody holds it.
#[derive(Default)]
pub struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// The process-wide table: every link's store shares it, since two components
    /// may count in the same collection.
    pub fn global() -> &'static KeyLocks {
        static LOCKS: OnceLock<KeyLocks> = OnceLock::new();
        LOCKS.get_or_init(KeyLocks::default)
    }

    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("the lock table is never poisoned: no panics inside");
        // Forget locks that only the table still holds.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(key.to_string()).or_default())
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.locks.lock().expect("never poisoned").len()
    }
}

/// The lock of document `key` in `collection` of database `db`, shared by every link.
pub fn document_lock(db: &str, collection: &str, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    KeyLocks::global().lock_for(&format!("{db}/{collection}/{key}"))
}

/// Bucket → collection: the empty bucket name (the official providers' default) is
/// `default`; names Mongo would reject are refused.
pub fn collection_name(bucket: &str) -> Result<String> {
    if bucket.is_empty() {
        return Ok("default".into());
    }
    if bucket.contains(['$', '\0']) || bucket.starts_with("system.") || bucket.len() > 120 {
        return Err(anyhow!("`{bucket}` cannot be used as a bucket name"));
    }
    Ok(bucket.to_string())
}

fn key_of(document: &Document) -> Option<String> {
    document.get_str("_id").ok().map(str::to_string)
}

pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        _ => error.to_string().contains("E11000"),
    }
}

/// The document stored for `value` under `key`.
pub fn encode(key: &str, value: &[u8]) -> Document {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice::<serde_json::Value>(value) {
        if !fields.contains_key("_id") && !fields.contains_key(VALUE_FIELD) {
            if let Ok(Bson::Document(body)) = mongodb::bson::to_bson(&fields) {
                let mut document = doc! { "_id": key };
                document.extend(body);
                return document;
            }
        }
    }
    doc! { "_id": key, VALUE_FIELD: Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() } }
}

/// The value bytes of a stored document (without its pending events: those are the
/// provider's business).
pub fn decode(mut document: Document) -> Result<Vec<u8>> {
    match document.get(VALUE_FIELD) {
        Some(Bson::Binary(binary)) => Ok(binary.bytes.clone()),
        Some(Bson::Int64(n)) => Ok(n.to_string().into_bytes()),
        Some(Bson::Int32(n)) => Ok(n.to_string().into_bytes()),
        Some(other) => Err(anyhow!("unexpected stored value {other:?}")),
        None => {
            document.remove("_id");
            document.remove(outbox::FIELD);
            Ok(serde_json::to_vec(&Bson::Document(document).into_relaxed_extjson())?)
        }
    }
}

/// The `traceparent` of the span this call runs in (the component's call, continuing its
/// request's trace), when tracing is on.
fn current_traceparent() -> Option<String> {
    use wasmcloud_provider_sdk::wasmcloud_tracing::context::TraceContextInjector;
    TraceContextInjector::default_with_span().get(ticketing_provider_support::trace::TRACEPARENT).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_become_documents_and_come_back_equal() {
        let value = br#"{"email":"a@b.com","n":10,"price":10.5,"tags":["x"],"nested":{"ok":true},"none":null}"#;
        let document = encode("k", value);
        assert_eq!(document.get_str("_id").unwrap(), "k");
        assert_eq!(document.get_str("email").unwrap(), "a@b.com");
        assert!(document.get(VALUE_FIELD).is_none());
        let back: serde_json::Value = serde_json::from_slice(&decode(document).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_slice::<serde_json::Value>(value).unwrap());
    }

    #[test]
    fn everything_else_is_kept_as_bytes() {
        for value in [&b"plain text"[..], b"[1,2]", b"\x00\xff\x10", br#"{"_id":"clash"}"#, b"", br#"{"big":18446744073709551615}"#] {
            let document = encode("k", value);
            assert!(matches!(document.get(VALUE_FIELD), Some(Bson::Binary(_))), "{value:?}");
            assert_eq!(decode(document).unwrap(), value);
        }
    }

    #[test]
    fn pending_events_are_not_part_of_the_value() {
        let document = doc! { "_id": "k", "a": 1_i64, outbox::FIELD: [{ "id": "x" }] };
        assert_eq!(decode(document).unwrap(), br#"{"a":1}"#);
        let binary = doc! { "_id": "k", VALUE_FIELD: Binary { subtype: BinarySubtype::Generic, bytes: b"raw".to_vec() }, outbox::FIELD: [] };
        assert_eq!(decode(binary).unwrap(), b"raw");
    }

    #[test]
    fn counters_read_as_decimal_text() {
        assert_eq!(decode(doc! { "_id": "c", VALUE_FIELD: 42_i64 }).unwrap(), b"42");
    }

    #[test]
    fn key_locks_are_shared_per_key_and_forgotten_when_free() {
        let locks = KeyLocks::default();
        let a1 = locks.lock_for("a");
        let a2 = locks.lock_for("a");
        assert!(Arc::ptr_eq(&a1, &a2));
        let b = locks.lock_for("b");
        assert!(!Arc::ptr_eq(&a1, &b));
        drop((a1, a2, b));
        let _c = locks.lock_for("c");
        assert_eq!(locks.count(), 1);
    }

    #[test]
    fn bucket_names() {
        assert_eq!(collection_name("").unwrap(), "default");
        assert_eq!(collection_name("users").unwrap(), "users");
        assert!(collection_name("a$b").is_err());
        assert!(collection_name("system.users").is_err());
    }
}
