//! The `Idempotency-Key` header on POST routes, as Stripe has it: a client that did not
//! get its answer (a timeout, a dropped connection) sends the same request again with
//! the same key and gets the first answer instead of a second ticket, order or charge.
//!
//! A key belongs to its owner (the signed-in user, or the client address where nobody is
//! signed in yet) and its route, so nobody can read another's result. The first request
//! with a key runs; while it runs, the same key gets 409; afterwards, the same request
//! gets the stored status, headers and body (plus `idempotent-replayed: true`), and the
//! same key with another body gets 422. A stored answer expires after [`KEEP_MS`], then
//! the key is free again. Answers worth retrying (409, 429, 5xx) are not kept: the next
//! try with that key runs again. A first request that never finished (it crashed, or the
//! store failed around it) holds its key for [`UNFINISHED_AFTER_MS`] only.
//!
//! A request whose first attempt died half-way (its store writes done, its answer lost)
//! is run again once that attempt is old; so that it does not make the thing twice, every
//! attempt of one key gets the same **work id** (kept in the record), and handlers name
//! what they create after it and answer with what an earlier attempt already stored.
//!
//! Storage: a [`lease`] per key (bucket [`CLAIMS`]) picks the one request that runs; the
//! record of each lease generation (bucket [`RECORDS`]) holds a MAC of the body and,
//! once known, the answer.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorItem};
use crate::http::{HandlerResult, Request, Response};
use crate::ids::new_id;
use crate::lease::{self, Lease};
use crate::session::SessionKeys;
use crate::time::Timestamp;
use crate::store::{JsonStore, KeyValue};

pub const HEADER: &str = "idempotency-key";
/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_CHARS: usize = 255;
/// How long an answer is kept for retries.
pub const KEEP_MS: u64 = 24 * 60 * 60 * 1000;
/// How long a first request that never finished holds its key: well beyond the gateway's
/// 20 s timeout, so a request still running is not run twice.
pub const UNFINISHED_AFTER_MS: u64 = 60_000;
pub const CLAIMS: &str = "idempotency_claims";
pub const RECORDS: &str = "idempotency";

pub const IN_PROGRESS: &str = "A request with this Idempotency-Key is in progress";
pub const OTHER_REQUEST: &str = "This Idempotency-Key was used with another request";

/// What the store keeps of a key's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// MAC of the request body (not the body: a sign-up's holds a password).
    fingerprint: String,
    /// When the request started, then when it was answered.
    at_ms: u64,
    state: State,
    answer: Option<Answer>,
    /// The id every attempt of this key passes to its handler (absent in records made
    /// before work ids existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    work_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum State {
    Running,
    /// Answered with something worth retrying: the key is free for the next try.
    Released,
    Answered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<Header>,
    body: String,
}

/// A header as a JSON object: the store keeps JSON as MongoDB documents, and FerretDB
/// refuses nested arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    name: String,
    value: String,
}

/// What one request served by [`once`] works under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// The id to give what the request creates: the same for every attempt of one key.
    pub id: String,
    /// An earlier attempt of the same request got this id and may have stored something
    /// under it already (look before creating); `false` for a fresh id (nothing can be
    /// there, so a create need not look).
    pub resumed: bool,
}

impl Work {
    fn fresh() -> Work {
        Work { id: new_id(), resumed: false }
    }
}

/// Serves `request` (a POST of `owner`) with `handler`, at most once per `Idempotency-Key`;
/// without the header, just runs `handler`. The handler gets its [`Work`] (see the
/// module docs).
pub fn once(
    store: &impl KeyValue,
    keys: &SessionKeys,
    now: Timestamp,
    owner: &str,
    request: &Request,
    handler: impl FnOnce(&Work) -> HandlerResult,
) -> HandlerResult {
    let Some(key) = request.header(HEADER) else { return handler(&Work::fresh()) };
    check_key(key)?;
    let id = record_id(request, owner, key);
    let fingerprint = keys.mac("idempotency", &request.body);

    let now_ms = now.millis();
    let (generation, work_id) = match lease::take(store, CLAIMS, &id, now)? {
        Lease::Won { generation } => (generation, None),
        held @ Lease::Held { generation, .. } => {
            let record = store.get_json::<Record>(RECORDS, &lease::generation_key(&id, generation))?;
            if let Some(answer) = earlier_answer(record.as_ref(), held, &fingerprint, now_ms)? {
                return Ok(answer);
            }
            match lease::take_over(store, CLAIMS, &id, generation, now)? {
                Lease::Won { generation } => (generation, record.and_then(|r| r.work_id)),
                Lease::Held { .. } => return Err(ApiError::new(409, IN_PROGRESS)),
            }
        }
    };
    let work = work_id.map_or_else(Work::fresh, |id| Work { id, resumed: true });
    run(store, &lease::generation_key(&id, generation), fingerprint, now_ms, work, handler).inspect_err(|_| {
        // The handler did not run: the next try need not wait.
        let _ = lease::release(store, CLAIMS, &id, generation);
    })
}

/// 1 to 255 printable ASCII characters, else a 400 naming the header.
fn check_key(key: &str) -> Result<(), ApiError> {
    if (1..=MAX_KEY_CHARS).contains(&key.len()) && key.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Ok(());
    }
    Err(ApiError {
        status: 400,
        errors: vec![ErrorItem {
            message: format!("Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters"),
            field: Some("Idempotency-Key".into()),
        }],
    })
}

/// Where a key's record lives: a hash of route, owner and key (bounded, and owners never
/// share one).
fn record_id(request: &Request, owner: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [request.method.as_str(), request.path.as_str(), owner, key] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer for a retry that found the key `held`: `Ok(None)` when the earlier request
/// left it free (released, expired, or never finished) and this one may take over.
fn earlier_answer(record: Option<&Record>, held: Lease, fingerprint: &str, now_ms: u64) -> Result<Option<Response>, ApiError> {
    let Some(record) = record else {
        // Claimed, but its record never came: running its first step, or failed there.
        return match held.held_longer_than(UNFINISHED_AFTER_MS, Timestamp::from_millis(now_ms)) {
            true => Ok(None),
            false => Err(ApiError::new(409, IN_PROGRESS)),
        };
    };
    let age = now_ms.saturating_sub(record.at_ms);
    match (record.state, &record.answer) {
        (State::Released, _) => return Ok(None),
        (State::Answered, _) if age >= KEEP_MS => return Ok(None),
        _ if record.fingerprint != fingerprint => return Err(ApiError::new(422, OTHER_REQUEST)),
        (State::Answered, Some(answer)) => return Ok(Some(replay(answer))),
        (State::Running, _) if age >= UNFINISHED_AFTER_MS => return Ok(None),
        _ => {}
    }
    Err(ApiError::new(409, IN_PROGRESS))
}

fn replay(answer: &Answer) -> Response {
    let mut headers: Vec<(String, String)> = answer.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect();
    headers.push(("idempotent-replayed".into(), "true".into()));
    Response { status: answer.status, headers, body: answer.body.clone().into_bytes() }
}

/// Runs the handler as the holder of generation key `key`, keeping what it answers; an
/// error only when the handler could not start.
fn run(
    store: &impl KeyValue,
    key: &str,
    fingerprint: String,
    now_ms: u64,
    work: Work,
    handler: impl FnOnce(&Work) -> HandlerResult,
) -> HandlerResult {
    let mut record = Record { fingerprint, at_ms: now_ms, state: State::Running, answer: None, work_id: Some(work.id.clone()) };
    store.set_json(RECORDS, key, &record)?;
    let response = handler(&work).unwrap_or_else(Response::from);
    match String::from_utf8(response.body.clone()) {
        Ok(body) if !worth_retrying(response.status) => {
            record.state = State::Answered;
            let headers = response.headers.iter().map(|(name, value)| Header { name: name.clone(), value: value.clone() }).collect();
            record.answer = Some(Answer { status: response.status, headers, body });
        }
        _ => record.state = State::Released,
    }
    // The work is done and this is its answer, even if the store cannot keep it now (a
    // retry then finds the request unfinished, and runs it again once that is old).
    let _ = store.set_json(RECORDS, key, &record);
    Ok(response)
}

/// Answers that say "not now" rather than "this is the result". A 404 is one here: the
/// services learn of each other's records through events, so "no such ticket" may only
/// mean "not arrived yet" (an order placed right after the ticket was listed), and it
/// changed nothing.
fn worth_retrying(status: u16) -> bool {
    status == 404 || status == 409 || status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::{FlakyStore, TEST_KEY};

    const NOW: u64 = 1_800_000_000_000;

    fn keys() -> SessionKeys {
        SessionKeys::new(TEST_KEY, 3600).unwrap()
    }

    fn post(key: Option<&str>, body: &str) -> Request {
        let request = Request::new("POST", "/api/things").with_body(body);
        match key {
            Some(key) => request.with_header("Idempotency-Key", key),
            None => request,
        }
    }

    /// A handler that makes one thing (a counter in the store) and says which.
    fn make_thing(store: &impl KeyValue) -> HandlerResult {
        let n = store.increment("things", "made", 1)?;
        Ok(Response::json(201, &serde_json::json!({ "thing": n })).with_header("set-cookie", &format!("thing={n}")))
    }

    fn call(store: &impl KeyValue, owner: &str, request: &Request, now_ms: u64) -> Response {
        crate::http::respond(once(store, &keys(), Timestamp::from_millis(now_ms), owner, request, |_| make_thing(store)))
    }

    fn made(store: &impl KeyValue) -> u64 {
        store.counter("things", "made").unwrap()
    }

    fn message(response: &Response) -> (u16, String) {
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        (response.status, body["errors"][0]["message"].as_str().unwrap_or_default().to_string())
    }

    #[test]
    fn without_the_header_every_request_runs() {
        let store = MemoryStore::default();
        call(&store, "u1", &post(None, "{}"), NOW);
        call(&store, "u1", &post(None, "{}"), NOW);
        assert_eq!(made(&store), 2);
    }

    #[test]
    fn a_retry_gets_the_first_answer_with_its_headers() {
        let store = MemoryStore::default();
        let first = call(&store, "u1", &post(Some("k1"), r#"{"a":1}"#), NOW);
        let again = call(&store, "u1", &post(Some("k1"), r#"{"a":1}"#), NOW + 1000);
        assert_eq!((first.status, &first.body), (201, &br#"{"thing":1}"#.to_vec()));
        assert_eq!((again.status, &again.body), (first.status, &first.body));
        assert_eq!(again.header("set-cookie"), Some("thing=1"));
        assert_eq!(again.header("content-type"), Some("application/json"));
        assert_eq!((first.header("idempotent-replayed"), again.header("idempotent-replayed")), (None, Some("true")));
        assert_eq!(made(&store), 1);
    }

    #[test]
    fn keys_belong_to_their_owner_and_route() {
        let store = MemoryStore::default();
        call(&store, "u1", &post(Some("k1"), "{}"), NOW);
        let other_owner = call(&store, "u2", &post(Some("k1"), "{}"), NOW);
        assert_eq!(other_owner.header("idempotent-replayed"), None);
        let other_route = Request { path: "/api/others".into(), ..post(Some("k1"), "{}") };
        call(&store, "u1", &other_route, NOW);
        assert_eq!(made(&store), 3);
        assert_eq!(record_id(&post(None, ""), "a", "bc"), record_id(&post(None, ""), "a", "bc"));
        assert_ne!(record_id(&post(None, ""), "a", "bc"), record_id(&post(None, ""), "ab", "c"), "owners never share a key");
    }

    #[test]
    fn the_same_key_with_another_body_is_a_422() {
        let store = MemoryStore::default();
        call(&store, "u1", &post(Some("k1"), r#"{"a":1}"#), NOW);
        let res = call(&store, "u1", &post(Some("k1"), r#"{"a":2}"#), NOW);
        assert_eq!(message(&res), (422, OTHER_REQUEST.into()));
        assert_eq!(made(&store), 1);
    }

    #[test]
    fn a_retry_while_the_first_runs_is_a_409() {
        let store = MemoryStore::default();
        let request = post(Some("k1"), "{}");
        let mut during = None;
        let first = crate::http::respond(once(&store, &keys(), Timestamp::from_millis(NOW), "u1", &request, |_| {
            during = Some(call(&store, "u1", &request, NOW + 10));
            make_thing(&store)
        }));
        assert_eq!(first.status, 201);
        assert_eq!(message(&during.unwrap()), (409, IN_PROGRESS.into()));
        assert_eq!(made(&store), 1);
    }

    #[test]
    fn answers_worth_retrying_are_not_kept() {
        let store = MemoryStore::default();
        let request = post(Some("k1"), "{}");
        for status in [500, 503, 409, 429, 404] {
            let res = crate::http::respond(once(&store, &keys(), Timestamp::from_millis(NOW), "u1", &request, |_| Err(ApiError::new(status, "not now"))));
            assert_eq!(res.status, status);
        }
        assert_eq!(call(&store, "u1", &request, NOW).status, 201, "the retry runs");
        assert_eq!(call(&store, "u1", &request, NOW).header("idempotent-replayed"), Some("true"));
        assert_eq!(made(&store), 1);
    }

    #[test]
    fn client_errors_are_the_final_answer() {
        let store = MemoryStore::default();
        let request = post(Some("k1"), "{}");
        let bad = |_: &Work| Err(ApiError::bad_request("Title is required"));
        assert_eq!(crate::http::respond(once(&store, &keys(), Timestamp::from_millis(NOW), "u1", &request, bad)).status, 400);
        let again = call(&store, "u1", &request, NOW);
        assert_eq!((message(&again), again.header("idempotent-replayed")), ((400, "Title is required".into()), Some("true")));
        assert_eq!(made(&store), 0);
    }

    #[test]
    fn answers_expire_and_the_key_is_free_again() {
        let store = MemoryStore::default();
        call(&store, "u1", &post(Some("k1"), r#"{"a":1}"#), NOW);
        assert_eq!(call(&store, "u1", &post(Some("k1"), r#"{"a":1}"#), NOW + KEEP_MS - 1).header("idempotent-replayed"), Some("true"));
        let later = call(&store, "u1", &post(Some("k1"), r#"{"a":2}"#), NOW + KEEP_MS);
        assert_eq!((later.status, later.header("idempotent-replayed")), (201, None));
        assert_eq!(made(&store), 2);
        let again = call(&store, "u1", &post(Some("k1"), r#"{"a":2}"#), NOW + KEEP_MS + 1);
        assert_eq!((&again.body, again.header("idempotent-replayed")), (&br#"{"thing":2}"#.to_vec(), Some("true")));
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        let store = MemoryStore::default();
        let too_long = "k".repeat(MAX_KEY_CHARS + 1);
        for bad in ["", "tab\there", "ключ", too_long.as_str()] {
            let res = call(&store, "u1", &post(Some(bad), "{}"), NOW);
            let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
            assert_eq!((res.status, &body["errors"][0]["field"]), (400, &serde_json::json!("Idempotency-Key")), "{bad:?}");
        }
        assert_eq!(made(&store), 0, "a refused key runs nothing");
        assert_eq!(call(&store, "u1", &post(Some(&"k".repeat(MAX_KEY_CHARS)), "{}"), NOW).status, 201);
        assert_eq!(call(&store, "u1", &post(Some(" ~!x"), "{}"), NOW).status, 201);
    }

    /// FerretDB stores JSON objects as documents and refuses arrays inside arrays.
    #[test]
    fn records_hold_no_nested_arrays() {
        fn nested(value: &serde_json::Value, in_array: bool) -> bool {
            match value {
                serde_json::Value::Array(items) => in_array || items.iter().any(|v| nested(v, true)),
                serde_json::Value::Object(fields) => fields.values().any(|v| nested(v, false)),
                _ => false,
            }
        }
        let store = MemoryStore::default();
        call(&store, "u1", &post(Some("k1"), "{}"), NOW);
        let keys = store.list_keys(RECORDS).unwrap();
        assert_eq!(keys.len(), 1);
        let record: serde_json::Value = store.get_json(RECORDS, &keys[0]).unwrap().unwrap();
        assert!(record["answer"]["headers"].as_array().is_some_and(|h| h.len() == 2), "{record}");
        assert!(!nested(&record, false), "{record}");
    }

    #[test]
    fn bodies_are_kept_as_macs_not_as_text() {
        let store = MemoryStore::default();
        call(&store, "u1", &post(Some("k1"), r#"{"password":"hunter22"}"#), NOW);
        for key in store.list_keys(RECORDS).unwrap() {
            let record = String::from_utf8(store.get(RECORDS, &key).unwrap().unwrap()).unwrap();
            assert!(!record.contains("hunter22"), "{record}");
        }
    }

    /// A store outage from each write of a first request on: the request either answered
    /// (and a retry gets that answer), or ran nothing and the key is free again at once or
    /// after [`UNFINISHED_AFTER_MS`]; never two things for one key, except when the store
    /// failed to keep the answer after the work was done (the last write).
    #[test]
    fn an_outage_at_any_write_leaves_the_key_usable() {
        let probe = FlakyStore::default();
        call(&probe, "u1", &post(Some("k1"), "{}"), NOW);
        let writes = probe.writes();
        assert_eq!(writes, 5, "lease time, claim, record, the handler's write, answer");
        for n in 1..=writes {
            let store = FlakyStore::default();
            store.outage_from_write(n);
            let first = call(&store, "u1", &post(Some("k1"), "{}"), NOW);
            store.heal();
            let soon = call(&store, "u1", &post(Some("k1"), "{}"), NOW + 1000);
            let later = call(&store, "u1", &post(Some("k1"), "{}"), NOW + 1000 + UNFINISHED_AFTER_MS);
            match n {
                1 | 2 => {
                    assert_eq!(first.status, 500, "write {n}");
                    assert_eq!((soon.status, soon.header("idempotent-replayed")), (201, None), "write {n}: nothing was claimed");
                }
                3 | 4 => {
                    assert_eq!(first.status, 500, "write {n}");
                    assert_eq!(message(&soon), (409, IN_PROGRESS.into()), "write {n}: maybe still running");
                    assert_eq!((later.status, later.header("idempotent-replayed")), (201, None), "write {n}: taken over");
                }
                _ => {
                    assert_eq!(first.status, 201, "the work was done: that is the answer");
                    assert_eq!(message(&soon), (409, IN_PROGRESS.into()), "not run twice while it may still be running");
                    assert_eq!(later.status, 201, "an unfinished request expires");
                }
            }
            let expected = if n == writes { 2 } else { 1 };
            assert_eq!(made(&store.inner), expected, "write {n}");
            assert_eq!(call(&store, "u1", &post(Some("k1"), "{}"), NOW + 2 * UNFINISHED_AFTER_MS).header("idempotent-replayed"), Some("true"));
        }
    }

    /// Every attempt of one key gets the same work id, so an attempt that takes over one
    /// that died half-way finds what that one stored instead of making it again.
    #[test]
    fn every_attempt_of_a_key_gets_the_same_work_id() {
        let store = MemoryStore::default();
        let seen = std::cell::RefCell::new(Vec::new());
        let attempt = |key: Option<&str>, now_ms: u64, answer: u16| {
            crate::http::respond(once(&store, &keys(), Timestamp::from_millis(now_ms), "u1", &post(key, "{}"), |work| {
                seen.borrow_mut().push(work.clone());
                Ok(Response::empty(answer))
            }))
        };
        attempt(Some("k1"), NOW, 503); // answered "try again": the key is free
        attempt(Some("k1"), NOW + 1, 201);
        let store_died = FlakyStore::default();
        store_died.fail_write(4); // the first attempt's answer is never kept
        let dying = |now_ms: u64| {
            crate::http::respond(once(&store_died, &keys(), Timestamp::from_millis(now_ms), "u1", &post(Some("k2"), "{}"), |work| {
                seen.borrow_mut().push(work.clone());
                Ok(Response::empty(201))
            }))
        };
        dying(NOW);
        assert_eq!(dying(NOW + 1).status, 409, "maybe still running");
        dying(NOW + 1 + UNFINISHED_AFTER_MS); // taken over
        attempt(None, NOW, 201);
        attempt(None, NOW, 201);
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 6);
        assert!(seen.iter().all(|work| crate::ids::is_valid_id(&work.id)), "{seen:?}");
        assert_eq!(seen[0].id, seen[1].id, "a retry after a 5xx");
        assert_eq!(seen[2].id, seen[3].id, "a take-over after an attempt died");
        assert_ne!(seen[0].id, seen[2].id, "another key");
        assert_ne!(seen[4].id, seen[5].id, "no key: fresh each time");
        let resumed: Vec<bool> = seen.iter().map(|work| work.resumed).collect();
        assert_eq!(resumed, [false, true, false, true, false, false], "only a later attempt of a key may find its work stored");
    }
}
