//! Storage as the components see it: `wasi:keyvalue` buckets, behind a trait so that
//! service logic runs against an in-memory store in native unit tests and against the
//! lattice's keyvalue provider (MongoDB) in a component.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;
use crate::events::{Announcement, OUTBOX_FIELD};
use crate::lease::{self, Lease};
use crate::time::Timestamp;

/// A storage failure: the provider or database is unavailable or refused the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage error: {}", self.0)
    }
}

impl From<StoreError> for ApiError {
    /// The client did nothing wrong: a 500 with the reference app's message.
    fn from(_: StoreError) -> Self {
        ApiError::new(500, "Error connecting to database")
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Keys returned per `list-keys` call by our keyvalue-mongo provider (and [`MemoryStore`]).
pub const KEY_PAGE_SIZE: u64 = 1000;

/// One page of `list-keys`: keys in key order, and the cursor of the next page (`None`
/// at the end). As our keyvalue-mongo provider does, a cursor is the offset of the next
/// page's first key, so a caller may start from any offset (see [`crate::listing`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<u64>,
}

/// The operations of `wasi:keyvalue` store, atomics and batch that services use.
pub trait KeyValue {
    fn get(&self, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()>;
    fn delete(&self, bucket: &str, key: &str) -> StoreResult<()>;
    fn exists(&self, bucket: &str, key: &str) -> StoreResult<bool>;
    /// Atomically adds `delta` and returns the new value (a missing key counts as 0).
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> StoreResult<u64>;
    /// One page of keys in key order, from the key at offset `cursor` (0 when `None`).
    fn list_keys_page(&self, bucket: &str, cursor: Option<u64>) -> StoreResult<KeyPage>;
    /// Values of many keys at once, in the order asked (`None` where missing).
    fn get_many(&self, bucket: &str, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>>;

    /// Every key of the bucket, in key order: reads the whole bucket, so only for small
    /// buckets and one-off jobs.
    fn list_keys(&self, bucket: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_keys_page(bucket, cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Sets many keys in one call where the store can (`wasi:keyvalue/batch`).
    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> StoreResult<()> {
        entries.iter().try_for_each(|(key, value)| self.set(bucket, key, value))
    }
}

/// How long a version claimed by a writer that never stored it blocks that version. A
/// writer stores right after claiming, and the hosts end any invocation after 30 s; a
/// claim older than this whose version is not in the store was abandoned (its writer
/// died, or the store failed between the two writes), and the next writer takes it over.
/// Event handlers are redelivered for longer than this (see `wadm.yaml`'s backoff), so a
/// change stuck behind such a claim is applied, not dead-lettered.
pub const ABANDONED_VERSION_MS: u64 = 40_000;

/// Another writer got there first (see [`JsonStore::save_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

/// Typed JSON access, and the race-free patterns services build on the atomic increment
/// (keyvalue has no compare-and-swap).
pub trait JsonStore: KeyValue {
    fn get_json<T: DeserializeOwned>(&self, bucket: &str, key: &str) -> StoreResult<Option<T>> {
        match self.get(bucket, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError(format!("{bucket}/{key} holds invalid data: {e}"))),
        }
    }

    fn set_json<T: Serialize>(&self, bucket: &str, key: &str, value: &T) -> StoreResult<()> {
        self.set_json_announcing(bucket, key, value, &[])
    }

    /// Stores `value` and the events announcing this change in one `set` (the
    /// transactional outbox, see [`Announcement`]): either both are stored or neither,
    /// and the keyvalue provider publishes the events once stored. `value` must
    /// serialise to a JSON object.
    fn set_json_announcing<T: Serialize>(&self, bucket: &str, key: &str, value: &T, events: &[Announcement]) -> StoreResult<()> {
        self.set(bucket, key, &json_to_set(bucket, key, value, events, false)?)
    }

    /// Stores `value` unless `key` holds something already (see
    /// [`JsonStore::create_json_announcing`]).
    fn create_json<T: Serialize>(&self, bucket: &str, key: &str, value: &T) -> StoreResult<()> {
        self.create_json_announcing(bucket, key, value, &[])
    }

    /// Like [`JsonStore::set_json_announcing`], but only if `key` holds nothing yet: when
    /// it does, nothing is stored and nothing announced (see [`CREATE_ONLY_FIELD`]). For
    /// records made once under a known key, where a repeat must not undo later changes.
    fn create_json_announcing<T: Serialize>(&self, bucket: &str, key: &str, value: &T, events: &[Announcement]) -> StoreResult<()> {
        self.set(bucket, key, &json_to_set(bucket, key, value, events, true)?)
    }

    /// True for exactly one caller per key, however many race: the first increment.
    fn claim(&self, bucket: &str, key: &str) -> StoreResult<bool> {
        Ok(self.increment(bucket, key, 1)? == 1)
    }

    /// The value of a counter made by `increment` (0 when absent).
    fn counter(&self, bucket: &str, key: &str) -> StoreResult<u64> {
        Ok(self
            .get(bucket, key)?
            .and_then(|v| String::from_utf8(v).ok()?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Stores `value` as version `version` of record `id`, with the events announcing
    /// the change, unless another writer already claimed that version (a [`lease`] on
    /// `<id>@<version>` in `claims`): changes of one record can then never overwrite each
    /// other. A claim abandoned half-way (see [`ABANDONED_VERSION_MS`]) is taken over, so
    /// a record never stays stuck below a version nobody stored.
    ///
    /// [`lease`]: crate::lease
    fn save_version<T: Serialize>(
        &self,
        bucket: &str,
        claims: &str,
        id: &str,
        version: u64,
        value: &T,
        events: &[Announcement],
    ) -> StoreResult<Result<(), Conflict>>
    where
        Self: Sized,
    {
        let key = format!("{id}@{version}");
        let now = Timestamp::now();
        if let held @ Lease::Held { generation, .. } = lease::take(self, claims, &key, now)? {
            let abandoned = held.held_longer_than(ABANDONED_VERSION_MS, now) && self.stored_version(bucket, id)? < Some(version);
            if !abandoned || !matches!(lease::take_over(self, claims, &key, generation, now)?, Lease::Won { .. }) {
                return Ok(Err(Conflict));
            }
        }
        self.set_json_announcing(bucket, id, value, events)?;
        Ok(Ok(()))
    }

    /// The `version` field of record `id`, if it is stored and has one.
    fn stored_version(&self, bucket: &str, id: &str) -> StoreResult<Option<u64>> {
        Ok(self.get_json::<serde_json::Value>(bucket, id)?.and_then(|record| record.get("version")?.as_u64()))
    }
}

impl<S: KeyValue + ?Sized> JsonStore for S {}

/// A value asks to be stored only if its key holds nothing yet when this top-level field
/// is `true`. Our keyvalue provider then inserts instead of replacing, in one database
/// call (no read before the write, and an insert costs FerretDB less than an upsert); a
/// key that holds a value keeps it, and the value's events are not announced. The field
/// is not stored. `wasi:keyvalue` has no create-only write; this rides on `set` the way
/// events do ([`OUTBOX_FIELD`]).
pub const CREATE_ONLY_FIELD: &str = "_createOnly";

/// The bytes to `set` for `value` (a JSON object when it carries events or is
/// `create_only`).
fn json_to_set<T: Serialize>(bucket: &str, key: &str, value: &T, events: &[Announcement], create_only: bool) -> StoreResult<Vec<u8>> {
    let mut json = serde_json::to_value(value).map_err(|e| StoreError(e.to_string()))?;
    if !events.is_empty() || create_only {
        let serde_json::Value::Object(fields) = &mut json else {
            return Err(StoreError(format!("{bucket}/{key}: only a JSON object can carry events or be create-only")));
        };
        if !events.is_empty() {
            fields.insert(OUTBOX_FIELD.into(), serde_json::to_value(events).map_err(|e| StoreError(e.to_string()))?);
        }
        if create_only {
            fields.insert(CREATE_ONLY_FIELD.into(), serde_json::Value::Bool(true));
        }
    }
    serde_json::to_vec(&json).map_err(|e| StoreError(e.to_string()))
}

/// An in-memory store with the same semantics as our keyvalue-mongo provider, for unit
/// tests: `list_keys_page` is sorted and paged by offset like the provider's, and the
/// events stored with a change are taken out of the value and kept in order, as the
/// provider publishes them ([`MemoryStore::take_announced`]).
pub struct MemoryStore {
    buckets: Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
    announced: Mutex<Vec<Announcement>>,
    /// When set, every call fails (to test how services react to an outage).
    pub failing: std::sync::atomic::AtomicBool,
    /// Keys per `list_keys_page` (the provider's 1000 by default; small in paging tests).
    pub page_size: u64,
    /// How many calls reached the store, to test what a request costs.
    pub calls: std::sync::atomic::AtomicUsize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            buckets: Mutex::default(),
            announced: Mutex::default(),
            failing: Default::default(),
            page_size: KEY_PAGE_SIZE,
            calls: Default::default(),
        }
    }
}

impl MemoryStore {
    /// A store whose `list_keys_page` returns `page_size` keys per call.
    pub fn with_page_size(page_size: u64) -> Self {
        Self { page_size: page_size.max(1), ..Self::default() }
    }

    /// The number of store calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The events announced by stored changes since the last call, in order.
    pub fn take_announced(&self) -> Vec<Announcement> {
        std::mem::take(&mut self.announced.lock().expect("no test panics while holding the lock"))
    }

    /// The subjects of [`MemoryStore::take_announced`].
    pub fn take_announced_subjects(&self) -> Vec<String> {
        self.take_announced().into_iter().map(|a| a.subject).collect()
    }

    /// Stores `value` as the provider does: without its outbox field, whose events count
    /// as announced (published) once stored, and only if the key is free when the value
    /// is create-only.
    fn store(&self, buckets: &mut BTreeMap<String, BTreeMap<String, Vec<u8>>>, bucket: &str, key: &str, value: &[u8]) {
        let entries = buckets.entry(bucket.to_string()).or_default();
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(value) else {
            entries.insert(key.to_string(), value.to_vec());
            return;
        };
        let create_only = fields.remove(CREATE_ONLY_FIELD) == Some(serde_json::Value::Bool(true));
        if create_only && entries.contains_key(key) {
            return;
        }
        if let Some(events) = fields.remove(OUTBOX_FIELD) {
            let events: Vec<Announcement> = serde_json::from_value(events).expect("the outbox holds announcements");
            self.announced.lock().expect("no test panics while holding the lock").extend(events);
        }
        entries.insert(key.to_string(), serde_json::to_vec(&fields).expect("a JSON object serialises"));
    }

    fn available(&self) -> StoreResult<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError("store unavailable".into()));
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, BTreeMap<String, Vec<u8>>>) -> T) -> StoreResult<T> {
        self.available()?;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(f(&mut self.buckets.lock().expect("no test panics while holding the lock")))
    }
}

impl KeyValue for MemoryStore {
    fn get(&self, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with(|b| b.get(bucket).and_then(|m| m.get(key)).cloned())
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        self.with(|b| self.store(b, bucket, key, value))
    }

    fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.with(|b| {
            if let Some(m) = b.get_mut(bucket) {
                m.remove(key);
            }
        })
    }

    fn exists(&self, bucket: &str, key: &str) -> StoreResult<bool> {
        self.with(|b| b.get(bucket).is_some_and(|m| m.contains_key(key)))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> StoreResult<u64> {
        self.with(|b| {
            let m = b.entry(bucket.to_string()).or_default();
            let current = m.get(key).and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok()).unwrap_or(0);
            let next = current + delta;
            m.insert(key.to_string(), next.to_string().into_bytes());
            next
        })
    }

    fn list_keys_page(&self, bucket: &str, cursor: Option<u64>) -> StoreResult<KeyPage> {
        let offset = cursor.unwrap_or(0);
        let size = self.page_size;
        self.with(|b| {
            let all = b.get(bucket).map(|m| m.len() as u64).unwrap_or(0);
            let keys = b
                .get(bucket)
                .map(|m| m.keys().skip(offset as usize).take(size as usize).cloned().collect())
                .unwrap_or_default();
            KeyPage { keys, cursor: (offset + size < all).then_some(offset + size) }
        })
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> StoreResult<()> {
        self.with(|b| {
            for (key, value) in entries {
                self.store(b, bucket, key, value);
            }
        })
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.with(|b| keys.iter().map(|k| b.get(bucket).and_then(|m| m.get(k)).cloned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_missing_keys() {
        let store = MemoryStore::default();
        store.set_json("b", "k", &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(store.get_json::<serde_json::Value>("b", "k").unwrap(), Some(serde_json::json!({"a": 1})));
        assert_eq!(store.get_json::<serde_json::Value>("b", "nope").unwrap(), None);
        assert!(store.exists("b", "k").unwrap());
        store.delete("b", "k").unwrap();
        assert!(!store.exists("b", "k").unwrap());
    }

    #[test]
    fn increments_count_from_zero() {
        let store = MemoryStore::default();
        assert_eq!(store.increment("c", "x", 1).unwrap(), 1);
        assert_eq!(store.increment("c", "x", 5).unwrap(), 6);
    }

    #[test]
    fn one_claim_per_key_and_one_writer_per_version() {
        let store = MemoryStore::default();
        assert!(store.claim("c", "k").unwrap());
        assert!(!store.claim("c", "k").unwrap());
        assert_eq!(store.counter("c", "k").unwrap(), 2);
        assert_eq!(store.counter("c", "none").unwrap(), 0);
        assert_eq!(store.save_version("b", "v", "id", 1, &1, &[]).unwrap(), Ok(()));
        assert_eq!(store.save_version("b", "v", "id", 1, &2, &[]).unwrap(), Err(Conflict));
        assert_eq!(store.get_json::<u32>("b", "id").unwrap(), Some(1));
    }

    #[test]
    fn a_version_claimed_but_never_stored_is_taken_over_once_abandoned() {
        let store = MemoryStore::default();
        let record = |version: u64| serde_json::json!({"id": "r", "version": version});
        assert_eq!(store.save_version("b", "v", "r", 0, &record(0), &[]).unwrap(), Ok(()));
        assert_eq!(store.save_version("b", "v", "r", 1, &record(1), &[]).unwrap(), Ok(()));
        // Version 2 claimed by a writer that died before storing it.
        assert_eq!(lease::take(&store, "v", "r@2", Timestamp::now()).unwrap(), Lease::Won { generation: 0 });
        assert_eq!(store.save_version("b", "v", "r", 2, &record(2), &[]).unwrap(), Err(Conflict), "it may still be storing");
        lease::release(&store, "v", "r@2", 0).unwrap(); // as old as can be
        assert_eq!(store.save_version("b", "v", "r", 2, &record(2), &[]).unwrap(), Ok(()), "abandoned: taken over");
        assert_eq!(store.save_version("b", "v", "r", 2, &record(2), &[]).unwrap(), Err(Conflict), "once");
        // An old claim whose version did reach the store stays a conflict.
        lease::release(&store, "v", "r@2", 1).unwrap();
        assert_eq!(store.save_version("b", "v", "r", 2, &record(2), &[]).unwrap(), Err(Conflict));
        assert_eq!(store.stored_version("b", "r").unwrap(), Some(2));
    }

    #[test]
    fn events_travel_in_the_same_set_as_their_change() {
        use crate::events::{ExpirationComplete, OUTBOX_FIELD};
        let store = MemoryStore::default();
        let event = Announcement::of(&ExpirationComplete { order_id: "o1".into() });
        store.set_json_announcing("b", "k", &serde_json::json!({"a": 1}), std::slice::from_ref(&event)).unwrap();
        assert_eq!(store.get_json::<serde_json::Value>("b", "k").unwrap(), Some(serde_json::json!({"a": 1})));
        assert_eq!(store.take_announced(), vec![event.clone()]);
        assert!(store.take_announced().is_empty(), "taken once");

        // What the provider receives: the entity with its events in one value.
        struct Recorder(Mutex<Vec<u8>>);
        impl KeyValue for Recorder {
            fn get(&self, _: &str, _: &str) -> StoreResult<Option<Vec<u8>>> { Ok(None) }
            fn set(&self, _: &str, _: &str, value: &[u8]) -> StoreResult<()> {
                *self.0.lock().unwrap() = value.to_vec();
                Ok(())
            }
            fn delete(&self, _: &str, _: &str) -> StoreResult<()> { Ok(()) }
            fn exists(&self, _: &str, _: &str) -> StoreResult<bool> { Ok(false) }
            fn increment(&self, _: &str, _: &str, _: u64) -> StoreResult<u64> { Ok(1) }
            fn list_keys_page(&self, _: &str, _: Option<u64>) -> StoreResult<KeyPage> { Ok(KeyPage::default()) }
            fn get_many(&self, _: &str, _: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> { Ok(vec![]) }
        }
        let recorder = Recorder(Mutex::default());
        recorder.save_version("b", "v", "k", 0, &serde_json::json!({"a": 1}), std::slice::from_ref(&event)).unwrap().unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&recorder.0.lock().unwrap()).unwrap();
        assert_eq!(sent["a"], 1);
        assert_eq!(sent[OUTBOX_FIELD][0]["id"], serde_json::json!(event.id));
        assert_eq!(sent[OUTBOX_FIELD][0]["subject"], "expiration:complete");
        assert_eq!(sent[OUTBOX_FIELD][0]["payload"], serde_json::json!({"orderId": "o1"}));
        assert!(recorder.set_json_announcing("b", "k", &5, &[event]).is_err(), "only an object carries events");
    }

    #[test]
    fn a_create_only_value_is_stored_and_announced_only_where_the_key_is_free() {
        use crate::events::ExpirationComplete;
        let store = MemoryStore::default();
        let first = Announcement::of(&ExpirationComplete { order_id: "o1".into() });
        let again = Announcement::of(&ExpirationComplete { order_id: "o1".into() });
        store.create_json_announcing("b", "k", &serde_json::json!({"v": 0}), std::slice::from_ref(&first)).unwrap();
        store.set_json("b", "k", &serde_json::json!({"v": 1})).unwrap();
        store.create_json_announcing("b", "k", &serde_json::json!({"v": 0}), std::slice::from_ref(&again)).unwrap();
        assert_eq!(store.get_json::<serde_json::Value>("b", "k").unwrap(), Some(serde_json::json!({"v": 1})), "not undone, field not stored");
        assert_eq!(store.take_announced(), vec![first], "the repeat announced nothing");
        assert!(store.create_json_announcing("b", "n", &5, &[]).is_err(), "only an object can be create-only");
    }

    #[test]
    fn a_failed_store_announces_nothing() {
        use crate::events::ExpirationComplete;
        let store = MemoryStore::default();
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        let event = Announcement::of(&ExpirationComplete { order_id: "o1".into() });
        assert!(store.set_json_announcing("b", "k", &serde_json::json!({}), &[event]).is_err());
        assert!(store.take_announced().is_empty());
    }

    #[test]
    fn keys_come_sorted_in_pages_like_the_mongo_provider() {
        let store = MemoryStore::with_page_size(2);
        for key in ["c", "a", "e", "b", "d"] {
            store.set("b", key, b"1").unwrap();
        }
        let first = store.list_keys_page("b", None).unwrap();
        assert_eq!(first, KeyPage { keys: vec!["a".into(), "b".into()], cursor: Some(2) });
        let last = store.list_keys_page("b", Some(4)).unwrap();
        assert_eq!(last, KeyPage { keys: vec!["e".into()], cursor: None });
        assert_eq!(store.list_keys_page("b", Some(1)).unwrap().keys, ["b", "c"], "any offset is a cursor");
        assert_eq!(store.list_keys_page("b", Some(9)).unwrap(), KeyPage::default());
        assert_eq!(store.list_keys_page("none", None).unwrap(), KeyPage::default());
        assert_eq!(store.list_keys("b").unwrap(), ["a", "b", "c", "d", "e"]);
        store.set("full", "x", b"1").unwrap();
        store.set("full", "y", b"1").unwrap();
        assert_eq!(store.list_keys_page("full", None).unwrap().cursor, None, "no empty page after an exact fit");
    }

    #[test]
    fn outage_maps_to_a_500() {
        let store = MemoryStore::default();
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        let err: ApiError = store.get("b", "k").unwrap_err().into();
        assert_eq!(err.status, 500);
    }
}
