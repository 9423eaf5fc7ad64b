//! The provider side of the transactional outbox: a change that was stored always gets
//! its events out, and no event goes out for a change that was not stored.
//!
//! A component cannot store a change and publish its event atomically: it can die, or
//! NATS can be down, between the two. So it stores the change and the events announcing
//! it in one keyvalue `set`: the value's top-level `_outbox` field lists them
//! (`{"id": "<24 hex>", "subject": "ticket:created", "payload": {...}}`, see [`split`]),
//! and this provider publishes them to JetStream, at least once, whatever fails.
//!
//! - **Pointer first.** Before it writes the document, `set` writes a [`Pointer`]
//!   `{_id: first event id, bucket, key, events, at}` into the `_outbox` collection of the
//!   same database. A crash at any point then leaves either a failed `set` (nothing was
//!   promised) or a pointer that leads the sweep to the document.
//! - **Pending events live in the document**, in its `_outbox` field, until published:
//!   written by the same write as the change, so only a stored change has events to
//!   publish (a pointer only says where to look). A write never drops them: it replaces a document only if its `_outbox` is still what
//!   the writer read (absent, on the fast path), and carries pending events forward
//!   ([`merge`]). `get` never shows the field.
//! - **The relay** ([`Relay::relay`]) publishes one document's pending events in order,
//!   each with `Nats-Msg-Id` = its id (JetStream drops a duplicate within its window;
//!   consumers are idempotent beyond it), stops at the first failure, then removes what
//!   went out and deletes the pointers that are done ([`Pointer::is_done`]). `set` starts
//!   one at once without waiting for it (unless [`MAX_WAITING_RELAYS`] are waiting);
//!   [`sweep_forever`] relays every pointer older than a second, again and again, so
//!   NATS being down, the process being killed or FerretDB restarting only delays an
//!   event.
//! - **One writer per document at a time.** FerretDB v1 applies an update by reading the
//!   document, then writing it, with nothing in between to stop another writer; so every
//!   write of a document and every change of its `_outbox` holds that key's in-process
//!   lock ([`crate::mongo::document_lock`]). On MongoDB the compare-and-set filters alone
//!   keep several provider instances correct; sweeping from several at once only
//!   publishes duplicates.
//!
//! Not covered: `delete` removes a document with whatever is still pending in it. A
//! component must not delete a key whose change it just announced.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use async_nats::jetstream::{self, context::Publish};
use futures::TryStreamExt as _;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::{Collection, Database};
use ticketing_provider_support::backoff::Doubling;
use ticketing_provider_support::trace::TRACEPARENT;
use tracing::{debug, error, info, warn};

use crate::mongo::{document_lock, is_duplicate_key, UPSERT_RETRIES};
use crate::write_gate;

/// The document field holding its unpublished events, and the collection of pointers.
pub const FIELD: &str = "_outbox";
pub const COLLECTION: &str = "_outbox";

/// A pointer none of whose events is in its document after this long belongs to a change
/// that never landed (its `set` failed after writing the pointer).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(300);
/// The sweep leaves younger pointers to the relay their `set` started.
pub const SWEEP_MIN_AGE: Duration = Duration::from_secs(1);
/// Longest pause between sweeps while events cannot go out.
pub const MAX_SWEEP_PAUSE: Duration = Duration::from_secs(30);
/// How long one publish may wait for JetStream's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// One event to publish: `<prefix>.<subject>`, body `payload` as JSON, `Nats-Msg-Id: id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub subject: String,
    pub payload: Bson,
    /// The W3C `traceparent` of the write that announced it, published as a header so
    /// that the handlers it triggers join the trace of the request that caused it.
    pub trace: Option<String>,
}

impl Event {
    /// The event as it is kept in a document's `_outbox`.
    pub fn to_bson(&self) -> Bson {
        let mut entry = doc! { "id": &self.id, "subject": &self.subject, "payload": self.payload.clone() };
        if let Some(trace) = &self.trace {
            entry.insert("trace", trace);
        }
        Bson::Document(entry)
    }

    /// An entry of a stored `_outbox`; `None` if it is not a well-formed event.
    pub fn from_bson(entry: &Bson) -> Option<Event> {
        let entry = entry.as_document()?;
        let id = entry.get_str("id").ok().filter(|id| valid_id(id))?;
        let subject = entry.get_str("subject").ok().filter(|s| valid_subject(s))?;
        let payload = entry.get("payload")?.clone();
        let trace = entry.get_str("trace").ok().map(str::to_string);
        Some(Event { id: id.to_string(), subject: subject.to_string(), payload, trace })
    }

    /// The body published: the payload as JSON.
    pub fn body(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.payload.clone().into_relaxed_extjson())?)
    }

    fn from_json(entry: serde_json::Value) -> Result<Event> {
        let serde_json::Value::Object(mut entry) = entry else {
            bail!("each `_outbox` entry must be an object with `id`, `subject` and `payload`");
        };
        let id = match entry.remove("id") {
            Some(serde_json::Value::String(id)) if valid_id(&id) => id,
            other => bail!("`_outbox` entry id must be 24 lowercase hex characters, got {other:?}"),
        };
        let subject = match entry.remove("subject") {
            Some(serde_json::Value::String(s)) if valid_subject(&s) => s,
            other => bail!("`_outbox` entry {id}: `subject` must be a subject such as `ticket:created`, got {other:?}"),
        };
        let payload = match entry.remove("payload") {
            Some(payload @ serde_json::Value::Object(_)) => payload,
            _ => bail!("`_outbox` entry {id}: `payload` must be a JSON object"),
        };
        let payload = mongodb::bson::to_bson(&payload).with_context(|| format!("`_outbox` entry {id}: payload cannot be stored"))?;
        Ok(Event { id, subject, payload, trace: None })
    }
}

/// Event ids are ObjectId-like: 24 lowercase hex characters.
pub fn valid_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A subject NATS accepts as (the end of) a publish subject: no spaces or wildcards, no
/// empty token.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 200
        && !subject.contains(|c: char| c.is_whitespace() || c.is_control() || c == '*' || c == '>')
        && subject.split('.').all(|token| !token.is_empty())
}

/// Splits a value given to `set` into what is stored as the entity (the value without its
/// `_outbox` field) and the events it announces. A value that is not a JSON object, or
/// has no `_outbox`, is all entity; a malformed `_outbox` is refused.
pub fn split(value: &[u8]) -> Result<(Cow<'_, [u8]>, Vec<Event>)> {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(value) else {
        return Ok((Cow::Borrowed(value), Vec::new()));
    };
    let Some(outbox) = fields.remove(FIELD) else {
        return Ok((Cow::Borrowed(value), Vec::new()));
    };
    let serde_json::Value::Array(entries) = outbox else {
        bail!("`_outbox` must be an array of events");
    };
    let mut events: Vec<Event> = Vec::with_capacity(entries.len());
    for entry in entries {
        let event = Event::from_json(entry)?;
        if !events.iter().any(|e| e.id == event.id) {
            events.push(event);
        }
    }
    Ok((Cow::Owned(serde_json::to_vec(&fields)?), events))
}

/// The `_outbox` to store: the entries still pending in the stored document, untouched
/// and in order, then the new events it does not hold yet (a retried `set` brings the
/// same ids again).
pub fn merge(pending: &[Bson], new: &[Event]) -> Vec<Bson> {
    let mut merged = pending.to_vec();
    for event in new {
        if !pending.iter().any(|entry| entry_id(entry) == Some(event.id.as_str())) {
            merged.push(event.to_bson());
        }
    }
    merged
}

/// What stays pending once `published` went out. Malformed entries go too: they can
/// never be published (only a direct database write can make one).
pub fn without(pending: &[Bson], published: &[String]) -> Vec<Bson> {
    pending
        .iter()
        .filter(|entry| Event::from_bson(entry).is_some_and(|e| !published.contains(&e.id)))
        .cloned()
        .collect()
}

fn entry_id(entry: &Bson) -> Option<&str> {
    entry.as_document().and_then(|d| d.get_str("id").ok())
}

/// The ids of a stored `_outbox` value (anything but an array holds none).
fn ids(outbox: &[Bson]) -> Vec<String> {
    outbox.iter().filter_map(entry_id).map(str::to_string).collect()
}

fn entries(outbox: Option<&Bson>) -> &[Bson] {
    match outbox {
        Some(Bson::Array(entries)) => entries,
        _ => &[],
    }
}

/// The stored `_outbox` of document `key`: `None` if it has none (or does not exist).
async fn stored_outbox(documents: &Collection<Document>, key: &str) -> Result<Option<Bson>> {
    let found = documents.find_one(doc! { "_id": key }).projection(doc! { FIELD: 1 }).await?;
    Ok(found.and_then(|mut d| d.remove(FIELD)))
}

/// Replaces document `key` with `document` plus the pending events of the stored one and
/// `new`, never dropping an event that is pending. Returns the `_outbox` it stored (empty:
/// none). The caller holds the key's lock, so nothing of this provider changes the
/// document in between.
///
/// Most documents have nothing pending, so one conditional write does it: replace (or
/// create) the document if it has no `_outbox`. Only if it has one (the upsert then
/// collides with the stored `_id`) is the stored `_outbox` read and merged.
pub(crate) async fn replace_keeping_pending(
    documents: &Collection<Document>,
    key: &str,
    document: Document,
    new: &[Event],
) -> Result<Vec<Bson>> {
    let with_outbox = |outbox: &[Bson]| {
        let mut replacement = document.clone();
        if !outbox.is_empty() {
            replacement.insert(FIELD, outbox.to_vec());
        }
        replacement
    };
    let outbox = merge(&[], new);
    let nothing_pending = doc! { "_id": key, FIELD: { "$exists": false } };
    let replaced = write_gate::write_to(documents, documents.replace_one(nothing_pending, with_outbox(&outbox)).upsert(true)).await;
    match replaced {
        Ok(_) => return Ok(outbox),
        Err(e) if is_duplicate_key(&e) => {} // it holds pending events (or was just created)
        Err(e) => return Err(e.into()),
    }
    let stored = stored_outbox(documents, key).await?;
    let outbox = merge(entries(stored.as_ref()), new);
    let replacement = with_outbox(&outbox);
    for _ in 0..=UPSERT_RETRIES {
        let replaced = write_gate::write_to(documents, documents.replace_one(doc! { "_id": key }, replacement.clone()).upsert(true)).await;
        match replaced {
            Ok(_) => return Ok(outbox),
            // Two upserts creating one `_id` at once: the loser's next try replaces.
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow!("`{key}` kept being created concurrently while it was written; try again"))
}

/// "Document `key` of collection `bucket` may have events to publish": written before the
/// document, deleted once they went out.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointer {
    /// The first event's id.
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub events: Vec<String>,
    pub at: DateTime,
}

impl Pointer {
    pub fn new(bucket: &str, key: &str, events: &[Event]) -> Option<Pointer> {
        let first = events.first()?;
        Some(Pointer {
            id: first.id.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            events: events.iter().map(|e| e.id.clone()).collect(),
            at: DateTime::now(),
        })
    }

    pub fn to_document(&self) -> Document {
        doc! { "_id": &self.id, "bucket": &self.bucket, "key": &self.key, "events": &self.events, "at": self.at }
    }

    /// A stored pointer; a missing `at` counts as very old, missing `events` as none.
    pub fn from_document(document: &Document) -> Option<Pointer> {
        let events = match document.get("events") {
            Some(Bson::Array(ids)) => ids.iter().filter_map(|id| id.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        Some(Pointer {
            id: document.get_str("_id").ok()?.to_string(),
            bucket: document.get_str("bucket").ok()?.to_string(),
            key: document.get_str("key").ok()?.to_string(),
            events,
            at: document.get_datetime("at").copied().unwrap_or(DateTime::MIN),
        })
    }

    /// Whether this pointer can go, after a relay that published `published` and left
    /// `pending` in the document: none of its events may still be pending, and either all
    /// of them went out with this relay, or it is so old that its change never landed. A
    /// younger pointer whose events are nowhere may belong to a `set` still on its way.
    pub fn is_done(&self, pending: &[String], published: &[String], now: DateTime) -> bool {
        if self.events.iter().any(|id| pending.contains(id)) {
            return false;
        }
        let all_published = !self.events.is_empty() && self.events.iter().all(|id| published.contains(id));
        let age = Duration::from_millis(u64::try_from(now.timestamp_millis().saturating_sub(self.at.timestamp_millis())).unwrap_or(0));
        all_published || age > ABANDONED_AFTER
    }
}

/// Writes (or renews: a retried `set` brings the same first id) a pointer.
pub(crate) async fn save_pointer(db: &Database, pointer: &Pointer) -> Result<()> {
    let pointers = db.collection::<Document>(COLLECTION);
    let mut attempt = 0;
    loop {
        let saved = write_gate::write(db.name(), pointers.replace_one(doc! { "_id": &pointer.id }, pointer.to_document()).upsert(true)).await;
        match saved {
            Ok(_) => return Ok(()),
            Err(e) if is_duplicate_key(&e) && attempt < UPSERT_RETRIES => attempt += 1,
            Err(e) => return Err(anyhow::Error::new(e).context("failed to write the outbox pointer")),
        }
    }
}

/// Publishes outbox events to JetStream.
#[derive(Clone)]
pub struct Relay {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: String,
    /// Bounds the relays started by writes: a burst of writes then waits for its events
    /// a moment instead of flooding the database with their follow-up writes. Enough run
    /// at once to keep up with writers as many as a component's concurrent requests: with
    /// writes taking turns ([`crate::write_gate`]), two relays against eight writers fell
    /// behind for good (50,000 events waiting after 80,000 creates).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The relays started by writes that are still to run, per document.
    queued: Arc<Mutex<Queued>>,
    /// How many relays started by writes may wait at once; past it a write leaves its
    /// events to the sweep (its pointer leads there), so that a burst of writes cannot
    /// hold its events in memory without bound (100,000 tickets created at 600 a second
    /// held 240 MiB of waiting relays).
    max_waiting: usize,
}

/// A document: its database, bucket and key.
type DocumentId = (String, String, String);

/// Relays started by writes and still to run: how many per document (the sweep leaves
/// those documents alone instead of publishing the same events again while a burst of
/// writes waits for its relays), and in all.
#[derive(Default)]
struct Queued {
    per_document: HashMap<DocumentId, usize>,
    total: usize,
}

impl Queued {
    /// Counts one more relay of `document`, unless `max` are queued already.
    fn enter(&mut self, document: &DocumentId, max: usize) -> bool {
        if self.total >= max {
            return false;
        }
        self.total += 1;
        *self.per_document.entry(document.clone()).or_default() += 1;
        true
    }

    /// A relay of `document` has run.
    fn leave(&mut self, document: &DocumentId) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_document.get_mut(document) {
            *count -= 1;
            if *count == 0 {
                self.per_document.remove(document);
            }
        }
    }
}

/// Relays started by writes that run at once (see [`Relay`]'s `in_flight`).
const RELAYS_AT_ONCE: usize = 8;

/// Relays started by writes that may be under way or waiting (see [`Relay`]'s `max_waiting`).
pub const MAX_WAITING_RELAYS: usize = 2000;

/// Pointers one sweep reads at most, oldest stored first: a backlog of tens of thousands
/// (NATS down for a while) is worked off a batch per sweep instead of being read and
/// decoded whole every time (FerretDB reads an unfiltered find with a limit as `LIMIT`).
pub const SWEEP_BATCH: i64 = 1000;

impl Relay {
    /// `prefix` starts every subject: `events` publishes `ticket:created` as
    /// `events.ticket:created`, into the stream the messaging provider keeps.
    pub fn new(client: async_nats::Client, prefix: &str) -> Relay {
        let js = jetstream::new(client.clone());
        let in_flight = Arc::new(tokio::sync::Semaphore::new(RELAYS_AT_ONCE));
        Relay { client, js, prefix: prefix.to_string(), in_flight, queued: Arc::default(), max_waiting: MAX_WAITING_RELAYS }
    }

    /// The same relay with at most `max_waiting` relays started by writes at once.
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Relay {
        self.max_waiting = max_waiting;
        self
    }

    /// Whether NATS is reachable right now (as far as the client knows).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes one event and waits until the stream stored it.
    pub async fn publish(&self, event: &Event) -> Result<()> {
        let subject = format!("{}.{}", self.prefix, event.subject);
        let mut message = Publish::build().payload(event.body()?.into()).message_id(&event.id);
        if let Some(trace) = &event.trace {
            message = message.header(TRACEPARENT, trace.as_str());
        }
        let publish = async {
            let ack = self.js.send_publish(subject, message).await?;
            ack.await?;
            anyhow::Ok(())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, publish).await.map_err(|_| anyhow!("no acknowledgement from JetStream"))?
    }

    /// Relays document `key` of collection `bucket` now, in the background: what `set`
    /// does after storing `written` (the document's whole `_outbox`) and `pointer`. If it
    /// fails, the sweep does it later.
    pub fn spawn(&self, db: Database, bucket: String, key: String, written: Vec<Bson>, pointer: Pointer) {
        if !self.connected() {
            return; // the sweep publishes once NATS is back
        }
        let document = (db.name().to_string(), bucket, key);
        if !self.queued_relays().enter(&document, self.max_waiting) {
            return; // the sweep publishes it, a batch at a time
        }
        let relay = self.clone();
        tokio::spawn(async move {
            let (_, bucket, key) = &document;
            if let Ok(_turn) = relay.in_flight.acquire().await {
                if let Err(e) = relay.relay_written(&db, bucket, key, written, &pointer).await {
                    debug!(bucket, key, error = format!("{e:#}"), "relay failed; the sweep retries it");
                }
            }
            relay.queued_relays().leave(&document);
        });
    }

    /// Whether a relay started by a write of document `key` is still to run.
    pub fn is_queued(&self, database: &str, bucket: &str, key: &str) -> bool {
        self.queued_relays().per_document.contains_key(&(database.to_string(), bucket.to_string(), key.to_string()))
    }

    fn queued_relays(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The relay right after a `set`, which knows what it stored: publishes `written`,
    /// then, under the key's lock, removes it if the document still holds just that and
    /// deletes its own pointer (most writes take this way).
    /// Whenever anything changed meanwhile it falls back to [`Relay::relay`].
    async fn relay_written(&self, db: &Database, bucket: &str, key: &str, written: Vec<Bson>, pointer: &Pointer) -> Result<()> {
        for entry in &written {
            let Some(event) = Event::from_bson(entry) else { return self.relay(db, bucket, key, std::slice::from_ref(pointer)).await };
            if let Err(e) = self.publish(&event).await {
                return Err(e.context(format!("publishing event {} ({}) of `{bucket}/{key}`", event.id, event.subject)));
            }
        }
        let documents = db.collection::<Document>(bucket);
        let removed = {
            let lock = document_lock(db.name(), bucket, key);
            let _held = lock.lock().await;
            let still_just_these = doc! { "_id": key, FIELD: Bson::Array(written) };
            let unset = documents.update_one(still_just_these, doc! { "$unset": { FIELD: "" } });
            write_gate::write(db.name(), unset).await?.matched_count > 0
        };
        if !removed {
            // another write came in between
            return self.relay(db, bucket, key, std::slice::from_ref(pointer)).await;
        }
        let pointers = db.collection::<Document>(COLLECTION);
        write_gate::write(db.name(), pointers.delete_one(doc! { "_id": &pointer.id, "at": pointer.at })).await?;
        Ok(())
    }

    /// Publishes the pending events of document `key` in order, stopping at the first
    /// failure; removes the published ones from the document and deletes the pointers to
    /// it that are done: of `known` (what the caller read), and those of the writes whose
    /// events this relay published (a pointer is named after its write's first event).
    /// Errors if an event could not be published (or the database failed).
    pub async fn relay(&self, db: &Database, bucket: &str, key: &str, known: &[Pointer]) -> Result<()> {
        let documents = db.collection::<Document>(bucket);
        let pending = stored_outbox(&documents, key).await?;
        let mut published = Vec::new();
        let mut failure = None;
        for entry in entries(pending.as_ref()) {
            let Some(event) = Event::from_bson(entry) else {
                error!(bucket, key, ?entry, "dropping a malformed outbox entry: it cannot be published");
                continue;
            };
            match self.publish(&event).await {
                Ok(()) => published.push(event.id),
                Err(e) => {
                    failure = Some(e.context(format!("publishing event {} ({}) of `{bucket}/{key}`", event.id, event.subject)));
                    break;
                }
            }
        }
        {
            let lock = document_lock(db.name(), bucket, key);
            let _held = lock.lock().await;
            let still_pending = remove_published(&documents, key, &published).await?;
            let pointers = with_pointers_of(db, bucket, key, known, &published).await?;
            forget_done_pointers(db, &pointers, &still_pending, &published).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Removes `published` (and malformed entries) from document `key`'s `_outbox`, dropping
/// the field when nothing remains so that writes take the fast path again. Returns the
/// ids still pending. The caller holds the key's lock.
async fn remove_published(documents: &Collection<Document>, key: &str, published: &[String]) -> Result<Vec<String>> {
    let Some(stored) = stored_outbox(documents, key).await? else {
        return Ok(Vec::new());
    };
    let before = entries(Some(&stored));
    let remaining = without(before, published);
    if matches!(stored, Bson::Array(_)) && remaining.len() == before.len() {
        return Ok(ids(&remaining)); // nothing of ours is there
    }
    let update = if remaining.is_empty() {
        doc! { "$unset": { FIELD: "" } }
    } else {
        doc! { "$set": { FIELD: remaining.clone() } }
    };
    write_gate::write_to(documents, documents.update_one(doc! { "_id": key }, update)).await?;
    Ok(ids(&remaining))
}

/// `known` and the other pointers to document `key` named after an event of `published`
/// (looked up by `_id`, which the index finds without reading the collection).
async fn with_pointers_of(db: &Database, bucket: &str, key: &str, known: &[Pointer], published: &[String]) -> Result<Vec<Pointer>> {
    let collection = db.collection::<Document>(COLLECTION);
    let mut pointers = known.to_vec();
    for id in published {
        if pointers.iter().any(|p| p.events.contains(id) || &p.id == id) {
            continue;
        }
        let found = collection.find_one(doc! { "_id": id }).await?;
        if let Some(pointer) = found.as_ref().and_then(Pointer::from_document) {
            if pointer.bucket == bucket && pointer.key == key {
                pointers.push(pointer);
            }
        }
    }
    Ok(pointers)
}

/// Deletes the pointers of document `key` that are done (see [`Pointer::is_done`]); each
/// only in the version that was judged, so a pointer a retried `set` just renewed stays.
/// The caller holds the key's lock.
async fn forget_done_pointers(db: &Database, pointers: &[Pointer], pending: &[String], published: &[String]) -> Result<()> {
    let collection = db.collection::<Document>(COLLECTION);
    let now = DateTime::now();
    for pointer in pointers.iter().filter(|p| p.is_done(pending, published, now)) {
        // Unless it was renewed meanwhile (a retried `set` writes the same pointer again).
        let at = if pointer.at == DateTime::MIN { Bson::Document(doc! { "$exists": false }) } else { Bson::DateTime(pointer.at) };
        write_gate::write(db.name(), collection.delete_one(doc! { "_id": &pointer.id, "at": at })).await?;
    }
    Ok(())
}

/// One sweep of database `db`: relays every document named by one of the first
/// [`SWEEP_BATCH`] pointers stored that is older than `min_age`, oldest pointer first,
/// except those a relay started by a write of this process is still to do. Stops early while NATS is unreachable; one document failing
/// does not stop the others. Returns how many documents failed.
pub async fn sweep(relay: &Relay, db: &Database, min_age: Duration) -> Result<usize> {
    let stored: Vec<Document> = db.collection::<Document>(COLLECTION).find(doc! {}).limit(SWEEP_BATCH).await?.try_collect().await?;
    let cutoff = DateTime::now().timestamp_millis() - i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    let mut old: Vec<Pointer> = stored.iter().filter_map(Pointer::from_document).filter(|p| p.at.timestamp_millis() <= cutoff).collect();
    old.sort_by_key(|p| p.at);
    // The pointers of each document, documents in the order of their oldest pointer.
    let mut documents: Vec<((String, String), Vec<Pointer>)> = Vec::new();
    let mut position: HashMap<(String, String), usize> = HashMap::new();
    for pointer in old {
        let target = (pointer.bucket.clone(), pointer.key.clone());
        match position.get(&target) {
            Some(&i) => documents[i].1.push(pointer),
            None => {
                position.insert(target.clone(), documents.len());
                documents.push((target, vec![pointer]));
            }
        }
    }
    let mut failed = 0;
    for ((bucket, key), pointers) in &documents {
        if !relay.connected() {
            bail!("NATS is unreachable");
        }
        if relay.is_queued(db.name(), bucket, key) {
            continue;
        }
        if let Err(e) = relay.relay(db, bucket, key, pointers).await {
            warn!(database = db.name(), bucket, key, error = format!("{e:#}"), "outbox events not published yet; retrying later");
            failed += 1;
        }
    }
    Ok(failed)
}

/// Sweeps the databases `databases()` returns every `interval`, for ever. While events
/// cannot go out (NATS or the database unreachable, a publish refused) the pause doubles
/// up to [`MAX_SWEEP_PAUSE`], but the next sweep starts as soon as NATS is back.
pub async fn sweep_forever<F, Fut>(relay: Relay, interval: Duration, databases: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Database>>,
{
    let mut pauses = Doubling::new(interval, MAX_SWEEP_PAUSE.max(interval));
    let mut was_failing = false;
    loop {
        let pause = pauses.current();
        let nats_was_up = relay.connected();
        let mut waited = Duration::ZERO;
        while waited < pause {
            let step = interval.min(pause - waited);
            tokio::time::sleep(step).await;
            waited += step;
            if !nats_was_up && relay.connected() {
                break;
            }
        }
        let mut failing = false;
        for db in databases().await {
            match sweep(&relay, &db, SWEEP_MIN_AGE).await {
                Ok(0) => {}
                Ok(_) => failing = true,
                Err(e) => {
                    failing = true;
                    warn!(database = db.name(), error = format!("{e:#}"), "outbox sweep failed; retrying later");
                }
            }
        }
        if failing != was_failing {
            if failing {
                warn!("outbox events are waiting to be published");
            } else {
                info!("outbox events flow again");
            }
            was_failing = failing;
        }
        if failing { pauses.double() } else { pauses.reset() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccc";

    fn event(id: &str) -> Event {
        Event { id: id.into(), subject: "ticket:created".into(), payload: Bson::Document(doc! { "n": 1_i64 }), trace: None }
    }

    fn stored(ids: &[&str]) -> Vec<Bson> {
        ids.iter().map(|id| event(id).to_bson()).collect()
    }

    #[test]
    fn split_takes_the_outbox_out_of_the_value() {
        let value = format!(r#"{{"title":"x","_outbox":[{{"id":"{A}","subject":"ticket:created","payload":{{"id":"t1","price":1050,"ok":true}}}}]}}"#);
        let (body, events) = split(value.as_bytes()).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), serde_json::json!({"title": "x"}));
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].id.as_str(), events[0].subject.as_str()), (A, "ticket:created"));
        let published: serde_json::Value = serde_json::from_slice(&events[0].body().unwrap()).unwrap();
        assert_eq!(published, serde_json::json!({"id": "t1", "price": 1050, "ok": true}));
    }

    #[test]
    fn values_without_an_outbox_are_left_alone() {
        for value in [&b"plain"[..], b"[1]", br#"{"a":1}"#, b"\xff"] {
            let (body, events) = split(value).unwrap();
            assert!(matches!(body, Cow::Borrowed(_)));
            assert_eq!(&*body, value);
            assert!(events.is_empty());
        }
        let (body, events) = split(br#"{"a":1,"_outbox":[]}"#).unwrap();
        assert_eq!(&*body, br#"{"a":1}"#);
        assert!(events.is_empty());
    }

    #[test]
    fn malformed_outboxes_are_refused() {
        for outbox in [
            r#""x""#,
            r#"[1]"#,
            r#"[{"id":"short","subject":"s","payload":{}}]"#,
            r#"[{"id":"AAAAAAAAAAAAAAAAAAAAAAAA","subject":"s","payload":{}}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"a b","payload":{}}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"a.>","payload":{}}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"","payload":{}}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"s","payload":1}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"s"}]"#,
            r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaa","subject":"s","payload":{"big":18446744073709551615}}]"#,
        ] {
            let value = format!(r#"{{"a":1,"_outbox":{outbox}}}"#);
            assert!(split(value.as_bytes()).is_err(), "{outbox}");
        }
    }

    #[test]
    fn an_id_given_twice_is_one_event() {
        let value = format!(
            r#"{{"_outbox":[{{"id":"{A}","subject":"s","payload":{{}}}},{{"id":"{A}","subject":"s","payload":{{}}}},{{"id":"{B}","subject":"s","payload":{{}}}}]}}"#
        );
        let ids: Vec<String> = split(value.as_bytes()).unwrap().1.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![A, B]);
    }

    #[test]
    fn merge_keeps_pending_events_first_and_adds_only_new_ones() {
        assert_eq!(merge(&[], &[event(A)]), stored(&[A]));
        assert_eq!(merge(&stored(&[A]), &[event(B)]), stored(&[A, B]));
        // A retried set brings A again: it is not added twice.
        assert_eq!(merge(&stored(&[A, B]), &[event(A), event(C)]), stored(&[A, B, C]));
        // A plain write keeps what is pending.
        assert_eq!(merge(&stored(&[A, B]), &[]), stored(&[A, B]));
        assert!(merge(&[], &[]).is_empty());
    }

    #[test]
    fn pending_entries_are_kept_exactly_as_stored() {
        // A compare-and-set filter needs the stored array byte for byte.
        let odd = Bson::Document(doc! { "payload": { "x": 1.5 }, "subject": "s", "id": A });
        assert_eq!(merge(std::slice::from_ref(&odd), &[event(B)])[0], odd);
    }

    #[test]
    fn without_drops_published_and_malformed_entries() {
        let mut pending = stored(&[A, B, C]);
        pending.push(Bson::String("junk".into()));
        assert_eq!(without(&pending, &[A.to_string(), C.to_string()]), stored(&[B]));
        assert!(without(&stored(&[A]), &[A.to_string()]).is_empty());
    }

    fn pointer(events: &[&str], age: Duration) -> Pointer {
        let at = DateTime::from_millis(DateTime::now().timestamp_millis() - age.as_millis() as i64);
        Pointer { id: events[0].into(), bucket: "b".into(), key: "k".into(), events: events.iter().map(|s| s.to_string()).collect(), at }
    }

    #[test]
    fn a_pointer_is_done_when_its_events_went_out_or_never_landed() {
        let now = DateTime::now();
        let s = |ids: &[&str]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        let fresh = pointer(&[A, B], Duration::from_secs(2));
        assert!(fresh.is_done(&[], &s(&[A, B]), now), "all published and gone");
        assert!(!fresh.is_done(&s(&[B]), &s(&[A]), now), "B is still pending");
        assert!(!fresh.is_done(&[], &s(&[A]), now), "B may still be written by its set");
        assert!(!fresh.is_done(&[], &[], now), "its set may still be on its way");
        let old = pointer(&[A, B], Duration::from_secs(301));
        assert!(old.is_done(&[], &[], now), "its change never landed");
        assert!(!old.is_done(&s(&[A]), &[], now), "still pending, however old");
    }

    #[test]
    fn pointers_round_trip_through_documents() {
        let p = pointer(&[A, B], Duration::ZERO);
        assert_eq!(Pointer::from_document(&p.to_document()), Some(p));
        let bare = Pointer::from_document(&doc! { "_id": A, "bucket": "b", "key": "k" }).unwrap();
        assert!(bare.events.is_empty());
        assert_eq!(bare.at, DateTime::MIN);
    }

    #[test]
    fn subjects() {
        assert!(valid_subject("ticket:created"));
        assert!(valid_subject("a.b"));
        for bad in ["", "a b", "a.*", ">", "a..b", ".a", "a.", "a\nb"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}
