//! Fixtures for the services' unit tests (tiny, so it ships in the library).

/// A signing key for tests only; deployments get theirs from config.
pub const TEST_KEY: &str = "a-test-key-that-is-long-enough-for-hs256";
/// Three valid ids: two users and one that exists nowhere.
pub const ALICE: &str = "5ec00000aaaaaaaaaaaaaaaa";
pub const BOB: &str = "5ec00000bbbbbbbbbbbbbbbb";
pub const NOWHERE: &str = "5ec00000cccccccccccccccc";

use crate::http::{Request, Response};
use crate::session::SessionKeys;

/// A request as a browser of `user` (or an anonymous one) would send it; the session
/// was issued at `issued_at` seconds.
pub fn request(method: &str, path: &str, session: Option<(&SessionKeys, &str, u64)>, body: Option<&serde_json::Value>) -> Request {
    let mut request = Request::new(method, path);
    if let Some((keys, user, issued_at)) = session {
        let token = keys.issue(user, "test@test.com", crate::time::Timestamp::from_seconds(issued_at));
        request = request.with_header("cookie", &format!("session={token}"));
    }
    if let Some(body) = body {
        request = request.with_body(body.to_string());
    }
    request
}

/// Status and JSON body (`null` when empty) of a response.
pub fn status_and_json(response: &Response) -> (u16, serde_json::Value) {
    let body = if response.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&response.body).expect("responses are JSON")
    };
    (response.status, body)
}

/// A [`MemoryStore`](crate::store::MemoryStore) that fails at a chosen write (`set`,
/// `delete` or `increment`), to prove that a request cut short between two writes leaves
/// nothing half-done: either an outage (that write and every call after it fail until
/// [`heal`]) or a single failed write.
///
/// [`heal`]: FlakyStore::heal
#[derive(Default)]
pub struct FlakyStore {
    pub inner: crate::store::MemoryStore,
    writes: std::sync::atomic::AtomicU64,
    /// The write (counted from 1 since the last `outage_from_write`) that fails first; 0: none.
    fail_at: std::sync::atomic::AtomicU64,
    /// Only that write fails, not the calls after it.
    once: std::sync::atomic::AtomicBool,
}

impl FlakyStore {
    /// The `n`-th write from now (1 = the next one) and every call after it fail.
    pub fn outage_from_write(&self, n: u64) {
        self.fail_from(n, false);
    }

    /// Only the `n`-th write from now fails.
    pub fn fail_write(&self, n: u64) {
        self.fail_from(n, true);
    }

    fn fail_from(&self, n: u64, once: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        self.writes.store(0, SeqCst);
        self.fail_at.store(n, SeqCst);
        self.once.store(once, SeqCst);
        self.inner.failing.store(false, SeqCst);
    }

    /// Ends the outage.
    pub fn heal(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.fail_at.store(0, SeqCst);
        self.inner.failing.store(false, SeqCst);
    }

    /// How many writes were attempted since the last `outage_from_write` (to find how many
    /// a request makes).
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn write(&self) -> crate::store::StoreResult<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.writes.fetch_add(1, SeqCst) + 1;
        let fail_at = self.fail_at.load(SeqCst);
        if fail_at == 0 || n < fail_at || (n > fail_at && self.once.load(SeqCst)) {
            return Ok(());
        }
        if !self.once.load(SeqCst) {
            self.inner.failing.store(true, SeqCst);
        }
        Err(crate::store::StoreError(format!("write {n} failed (test)")))
    }
}

impl crate::store::KeyValue for FlakyStore {
    fn get(&self, bucket: &str, key: &str) -> crate::store::StoreResult<Option<Vec<u8>>> {
        self.inner.get(bucket, key)
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> crate::store::StoreResult<()> {
        self.write()?;
        self.inner.set(bucket, key, value)
    }

    fn delete(&self, bucket: &str, key: &str) -> crate::store::StoreResult<()> {
        self.write()?;
        self.inner.delete(bucket, key)
    }

    fn exists(&self, bucket: &str, key: &str) -> crate::store::StoreResult<bool> {
        self.inner.exists(bucket, key)
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> crate::store::StoreResult<u64> {
        self.write()?;
        self.inner.increment(bucket, key, delta)
    }

    fn list_keys_page(&self, bucket: &str, cursor: Option<u64>) -> crate::store::StoreResult<crate::store::KeyPage> {
        self.inner.list_keys_page(bucket, cursor)
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> crate::store::StoreResult<Vec<Option<Vec<u8>>>> {
        self.inner.get_many(bucket, keys)
    }
}
