//! The provider side of the transactional outbox: a change that was stored always gets
//! its events out, and no event goes out for a change that was not stored.
//!
//! A component cannot store a change and publish its event atomically: it can die, or
//! NATS can be down, between the two. So it stores the change and the events announcing
//! it in one keyvalue `set`: the value's top-level `_outbox` field lists them
//! (`{"id": "<24 hex>", "subject": "ticket:created", "payload": {...}}`, see [`split`]),
//! and this provider publishes them to JetStream, at least once, whatever fails.
//!
//! - **Pending events live in the document**, in its `_outbox` field, until published:
//!   written by the same write as the change, so only a stored change has events to
//!   publish. A write never drops them: it replaces a document only if its `_outbox` is
//!   still what the writer read (absent, on the fast path), and carries pending events
//!   forward ([`merge`]). `get` never shows the field.
//! - **The relay** ([`Relay::relay`]) publishes one document's pending events in order,
//!   each with `Nats-Msg-Id` = its id (JetStream drops a duplicate within its window;
//!   consumers are idempotent beyond it), stops at the first failure, then removes what
//!   went out. `set` starts one at once without waiting for it (unless
//!   [`MAX_WAITING_RELAYS`] are waiting); a document whose events did not go out (NATS
//!   down, no room for a relay, a write whose answer was lost) is remembered for
//!   [`sweep_forever`], which relays it again and again. So NATS being down or FerretDB
//!   restarting only delays an event.
//! - **Scans find what a process left.** A killed process forgets what it remembered, so
//!   an instance that starts serving scans every linked database for documents with an
//!   `_outbox` first, and again every [`RESCAN_EVERY`]. (Earlier, `set` wrote a pointer
//!   document before each announcing write and deleted it after the relay: two of the
//!   five database writes of a ticket creation, to save a scan per start.)
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
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use async_nats::jetstream::{self, context::Publish};
use futures::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::{Collection, Database};
use ticketing_provider_support::backoff::Doubling;
use ticketing_provider_support::trace::TRACEPARENT;
use tracing::{debug, error, info, warn};

use crate::mongo::{document_lock, is_duplicate_key, UPSERT_RETRIES};
use crate::write_gate;

/// The document field holding its unpublished events.
pub const FIELD: &str = "_outbox";

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

/// The field of a `set` value asking to store it only if its key holds nothing yet
/// (`true`): the document is then inserted, and a key that holds one keeps it, with no
/// event announced. Not stored.
pub const CREATE_ONLY_FIELD: &str = "_createOnly";

/// A value given to `set`, taken apart.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// What is stored: the value without `_outbox` and `_createOnly`.
    pub entity: Cow<'a, [u8]>,
    /// The events it announces.
    pub events: Vec<Event>,
    /// Store it only if the key holds nothing yet ([`CREATE_ONLY_FIELD`]).
    pub create_only: bool,
}

/// Splits a value given to `set` into the entity to store, the events it announces and
/// whether it may only create. A value that is not a JSON object, or has neither field,
/// is all entity; a malformed `_outbox` or `_createOnly` is refused.
pub fn split(value: &[u8]) -> Result<Incoming<'_>> {
    let all_entity = || Incoming { entity: Cow::Borrowed(value), events: Vec::new(), create_only: false };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(value) else {
        return Ok(all_entity());
    };
    let (outbox, create_only) = (fields.remove(FIELD), fields.remove(CREATE_ONLY_FIELD));
    if outbox.is_none() && create_only.is_none() {
        return Ok(all_entity());
    }
    let create_only = match create_only {
        None => false,
        Some(serde_json::Value::Bool(create_only)) => create_only,
        Some(other) => bail!("`{CREATE_ONLY_FIELD}` must be true or false, got {other}"),
    };
    let entries = match outbox {
        None => Vec::new(),
        Some(serde_json::Value::Array(entries)) => entries,
        Some(_) => bail!("`_outbox` must be an array of events"),
    };
    let mut events: Vec<Event> = Vec::with_capacity(entries.len());
    for entry in entries {
        let event = Event::from_json(entry)?;
        if !events.iter().any(|e| e.id == event.id) {
            events.push(event);
        }
    }
    Ok(Incoming { entity: Cow::Owned(serde_json::to_vec(&fields)?), events, create_only })
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

/// Creates `document` (its `_id` is the key) with the events `new` pending, unless it
/// exists: then nothing is written. Returns the `_outbox` it stored (empty: none, or
/// nothing written). One insert, which FerretDB does for less than an upsert.
pub(crate) async fn insert_new(documents: &Collection<Document>, mut document: Document, new: &[Event]) -> Result<Vec<Bson>> {
    let outbox = merge(&[], new);
    if !outbox.is_empty() {
        document.insert(FIELD, outbox.clone());
    }
    match write_gate::write_to(documents, documents.insert_one(document)).await {
        Ok(_) => Ok(outbox),
        Err(e) if is_duplicate_key(&e) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
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

/// Publishes outbox events to JetStream, and remembers the documents whose events it
/// could not publish yet.
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
    backlog: Arc<Mutex<Backlog>>,
    /// How many relays started by writes may wait at once; past it a write leaves its
    /// events to the sweep, so that a burst of writes cannot hold its events in memory
    /// without bound (100,000 tickets created at 600 a second held 240 MiB of waiting
    /// relays).
    max_waiting: usize,
    /// How many documents the backlog remembers (see [`MAX_REMEMBERED`]).
    max_remembered: usize,
}

/// A document: its database, bucket and key.
type DocumentId = (String, String, String);

/// What the relay still has to do, besides the pending events a scan finds.
#[derive(Default)]
struct Backlog {
    /// Relays started by writes still to run, per document (the sweep leaves those
    /// documents to them: a relay publishes everything pending in its document).
    queued: HashMap<DocumentId, usize>,
    /// Documents whose events did not go out (NATS down, a publish refused, no room for
    /// a relay): the next sweep relays them.
    retry: HashSet<DocumentId>,
    /// More documents were left than it remembers: the next sweep scans instead.
    rescan: bool,
}

impl Backlog {
    /// Counts one more relay of `document`, unless `max` are queued already (summing a
    /// few entries as a rule, up to `max` in a burst: cheaper than keeping a total in step).
    fn enter(&mut self, document: &DocumentId, max: usize) -> bool {
        if self.queued.values().sum::<usize>() >= max {
            return false;
        }
        *self.queued.entry(document.clone()).or_default() += 1;
        true
    }

    /// A relay of `document` has run.
    fn leave(&mut self, document: &DocumentId) {
        if let Some(count) = self.queued.get_mut(document) {
            *count -= 1;
            if *count == 0 {
                self.queued.remove(document);
            }
        }
    }

    /// Leaves `document` to the next sweep, or, past `max` documents, a scan.
    fn remember(&mut self, document: DocumentId, max: usize) {
        if self.retry.len() < max {
            self.retry.insert(document);
        } else {
            self.rescan = true;
        }
    }
}

/// Relays started by writes that run at once (see [`Relay`]'s `in_flight`).
const RELAYS_AT_ONCE: usize = 8;

/// Relays started by writes that may be under way or waiting (see [`Relay`]'s `max_waiting`).
pub const MAX_WAITING_RELAYS: usize = 2000;

/// Documents the relay remembers for the next sweep; past it, the sweep scans instead
/// (a few MiB: a long NATS outage under load must not grow the provider without bound).
pub const MAX_REMEMBERED: usize = 50_000;

/// How often the sweep also scans every collection for pending events, though nothing
/// should be left there: a relay task that never ran, a write that landed after the lease
/// moved on, a value written with an `_outbox` by hand. A scan reads each document's
/// `_id` where FerretDB v1 cannot use an index (about a second for 100,000 documents).
pub const RESCAN_EVERY: Duration = Duration::from_secs(600);

impl Relay {
    /// `prefix` starts every subject: `events` publishes `ticket:created` as
    /// `events.ticket:created`, into the stream the messaging provider keeps.
    pub fn new(client: async_nats::Client, prefix: &str) -> Relay {
        let js = jetstream::new(client.clone());
        let in_flight = Arc::new(tokio::sync::Semaphore::new(RELAYS_AT_ONCE));
        let backlog = Arc::default();
        Relay { client, js, prefix: prefix.to_string(), in_flight, backlog, max_waiting: MAX_WAITING_RELAYS, max_remembered: MAX_REMEMBERED }
    }

    /// The same relay with at most `max_waiting` relays started by writes at once.
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Relay {
        self.max_waiting = max_waiting;
        self
    }

    /// The same relay remembering at most `max_remembered` documents for the sweep.
    pub fn with_max_remembered(mut self, max_remembered: usize) -> Relay {
        self.max_remembered = max_remembered;
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
    /// does after storing `written` (the document's whole `_outbox`). Whatever does not
    /// go out is left to the sweep.
    pub fn spawn(&self, db: Database, bucket: String, key: String, written: Vec<Bson>) {
        let document = (db.name().to_string(), bucket, key);
        {
            let mut backlog = self.backlog();
            if !self.connected() || !backlog.enter(&document, self.max_waiting) {
                backlog.remember(document, self.max_remembered);
                return;
            }
        }
        let relay = self.clone();
        tokio::spawn(async move {
            let (_, bucket, key) = &document;
            let relayed = match relay.in_flight.acquire().await {
                Ok(_turn) => relay.relay_written(&db, bucket, key, written).await,
                Err(e) => Err(e.into()),
            };
            let mut backlog = relay.backlog();
            backlog.leave(&document);
            if let Err(e) = relayed {
                debug!(bucket, key, error = format!("{e:#}"), "relay failed; the sweep retries it");
                backlog.remember(document, relay.max_remembered);
            }
        });
    }

    /// Whether a relay started by a write of document `key` is still to run.
    pub fn is_queued(&self, database: &str, bucket: &str, key: &str) -> bool {
        self.backlog().queued.contains_key(&(database.to_string(), bucket.to_string(), key.to_string()))
    }

    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leaves document `key` of `database` to the next sweep.
    pub(crate) fn remember(&self, database: &str, bucket: String, key: String) {
        self.backlog().remember((database.to_string(), bucket, key), self.max_remembered);
    }

    /// The documents of database `database` left to the sweep, taken out of the backlog.
    fn take_retries(&self, database: &str) -> Vec<(String, String)> {
        let mut backlog = self.backlog();
        backlog.retry.extract_if(|(db, _, _)| db == database).map(|(_, bucket, key)| (bucket, key)).collect()
    }

    /// Whether a sweep must scan because the backlog overflowed (asked once: it resets).
    fn take_rescan(&self) -> bool {
        std::mem::take(&mut self.backlog().rescan)
    }

    /// The relay right after a `set`, which knows what it stored: publishes `written`,
    /// then, under the key's lock, removes it if the document still holds just that
    /// (most writes take this way). Whenever anything changed meanwhile it falls back to
    /// [`Relay::relay`].
    async fn relay_written(&self, db: &Database, bucket: &str, key: &str, written: Vec<Bson>) -> Result<()> {
        for entry in &written {
            let Some(event) = Event::from_bson(entry) else { return self.relay(db, bucket, key).await };
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
            return self.relay(db, bucket, key).await;
        }
        Ok(())
    }

    /// Publishes the pending events of document `key` in order, stopping at the first
    /// failure, and removes the published ones from the document. Errors if an event
    /// could not be published (or the database failed).
    pub async fn relay(&self, db: &Database, bucket: &str, key: &str) -> Result<()> {
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
            remove_published(&documents, key, &published).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Removes `published` (and malformed entries) from document `key`'s `_outbox`, dropping
/// the field when nothing remains so that writes take the fast path again. The caller
/// holds the key's lock.
async fn remove_published(documents: &Collection<Document>, key: &str, published: &[String]) -> Result<()> {
    let Some(stored) = stored_outbox(documents, key).await? else {
        return Ok(());
    };
    let before = entries(Some(&stored));
    let remaining = without(before, published);
    if matches!(stored, Bson::Array(_)) && remaining.len() == before.len() {
        return Ok(()); // nothing of ours is there
    }
    let update = if remaining.is_empty() {
        doc! { "$unset": { FIELD: "" } }
    } else {
        doc! { "$set": { FIELD: remaining } }
    };
    write_gate::write_to(documents, documents.update_one(doc! { "_id": key }, update)).await?;
    Ok(())
}

/// Every document of database `db` with pending events, as (bucket, key): a scan of
/// every collection, reading only `_id`s.
pub async fn pending_documents(db: &Database) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for bucket in db.list_collection_names().await? {
        if bucket.starts_with("system.") {
            continue;
        }
        let collection = db.collection::<Document>(&bucket);
        let with_events = collection.find(doc! { FIELD: { "$exists": true } }).projection(doc! { "_id": 1 });
        let documents: Vec<Document> = with_events.await?.try_collect().await?;
        found.extend(documents.iter().filter_map(|d| d.get_str("_id").ok()).map(|key| (bucket.clone(), key.to_string())));
    }
    Ok(found)
}

/// One sweep of database `db`: relays every document the relay left to it and, when
/// `scan`, every document holding pending events, except those a relay started by a
/// write is still to do. Stops early while NATS is unreachable (what it did not get to
/// is left to the next sweep); one document failing does not stop the others. Returns
/// how many documents failed.
pub async fn sweep(relay: &Relay, db: &Database, scan: bool) -> Result<usize> {
    let mut documents = if scan { pending_documents(db).await? } else { Vec::new() };
    let mut seen: HashSet<(String, String)> = documents.iter().cloned().collect();
    documents.extend(relay.take_retries(db.name()).into_iter().filter(|document| seen.insert(document.clone())));
    let mut failed = 0;
    let mut documents = documents.into_iter();
    while let Some((bucket, key)) = documents.next() {
        if !relay.connected() {
            let waiting = 1 + documents.len();
            relay.remember(db.name(), bucket, key);
            documents.for_each(|(bucket, key)| relay.remember(db.name(), bucket, key));
            bail!("NATS is unreachable ({waiting} documents wait)");
        }
        if relay.is_queued(db.name(), &bucket, &key) {
            continue;
        }
        if let Err(e) = relay.relay(db, &bucket, &key).await {
            warn!(database = db.name(), bucket, key, error = format!("{e:#}"), "outbox events not published yet; retrying later");
            relay.remember(db.name(), bucket, key);
            failed += 1;
        }
    }
    Ok(failed)
}

/// Sweeps the databases `databases()` returns every `interval`, for ever: the first sweep
/// of each database scans it (whatever an instance that stopped left pending, this one
/// finds), later ones relay what the relay left to them, and scan again every
/// [`RESCAN_EVERY`] or when the backlog overflowed. While events cannot go out (NATS or
/// the database unreachable, a publish refused) the pause doubles up to
/// [`MAX_SWEEP_PAUSE`], but the next sweep starts as soon as NATS is back.
pub async fn sweep_forever<F, Fut>(relay: Relay, interval: Duration, databases: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Database>>,
{
    let mut pauses = Doubling::new(interval, MAX_SWEEP_PAUSE.max(interval));
    let mut was_failing = false;
    let mut scanned: HashMap<String, Instant> = HashMap::new();
    loop {
        if relay.take_rescan() {
            scanned.clear();
        }
        let mut failing = false;
        for db in databases().await {
            let scan = scanned.get(db.name()).is_none_or(|at| at.elapsed() >= RESCAN_EVERY);
            let started = Instant::now();
            match sweep(&relay, &db, scan).await {
                Ok(failed) => {
                    if scan {
                        scanned.insert(db.name().to_string(), started);
                    }
                    failing |= failed > 0;
                }
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
        // The pause, cut short when NATS comes back.
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
        let Incoming { entity, events, create_only } = split(value.as_bytes()).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&entity).unwrap(), serde_json::json!({"title": "x"}));
        assert!(!create_only);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].id.as_str(), events[0].subject.as_str()), (A, "ticket:created"));
        let published: serde_json::Value = serde_json::from_slice(&events[0].body().unwrap()).unwrap();
        assert_eq!(published, serde_json::json!({"id": "t1", "price": 1050, "ok": true}));
    }

    #[test]
    fn values_without_an_outbox_are_left_alone() {
        for value in [&b"plain"[..], b"[1]", br#"{"a":1}"#, b"\xff"] {
            let Incoming { entity, events, create_only } = split(value).unwrap();
            assert!(matches!(entity, Cow::Borrowed(_)));
            assert_eq!(&*entity, value);
            assert!(events.is_empty() && !create_only);
        }
        let Incoming { entity, events, create_only } = split(br#"{"a":1,"_outbox":[]}"#).unwrap();
        assert_eq!(&*entity, br#"{"a":1}"#);
        assert!(events.is_empty() && !create_only);
    }

    #[test]
    fn create_only_is_taken_out_of_the_value() {
        let Incoming { entity, events, create_only } = split(br#"{"a":1,"_createOnly":true}"#).unwrap();
        assert_eq!((&*entity, events.len(), create_only), (&br#"{"a":1}"#[..], 0, true));
        let value = format!(r#"{{"a":1,"_createOnly":true,"_outbox":[{{"id":"{A}","subject":"s","payload":{{}}}}]}}"#);
        let Incoming { entity, events, create_only } = split(value.as_bytes()).unwrap();
        assert_eq!((&*entity, events.len(), create_only), (&br#"{"a":1}"#[..], 1, true));
        assert!(!split(br#"{"_createOnly":false}"#).unwrap().create_only);
        assert!(split(br#"{"_createOnly":1}"#).is_err());
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
        let ids: Vec<String> = split(value.as_bytes()).unwrap().events.into_iter().map(|e| e.id).collect();
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

    #[test]
    fn subjects() {
        assert!(valid_subject("ticket:created"));
        assert!(valid_subject("a.b"));
        for bad in ["", "a b", "a.*", ">", "a..b", ".a", "a.", "a\nb"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}
