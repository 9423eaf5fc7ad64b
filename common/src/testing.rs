//! Fixtures for the services' unit tests (tiny, so it ships in the library).

/// A signing key for tests only; deployments get theirs from config.
pub const TEST_KEY: &str = "a-test-key-that-is-long-enough-for-hs256";
/// Three valid ids: two users and one that exists nowhere.
pub const ALICE: &str = "5ec00000aaaaaaaaaaaaaaaa";
pub const BOB: &str = "5ec00000bbbbbbbbbbbbbbbb";
pub const NOWHERE: &str = "5ec00000cccccccccccccccc";

use crate::http::{Request, Response};
use crate::session::SessionKeys;

/// A request as a browser of `user` (or an anonymous one) would send it.
pub fn request(method: &str, path: &str, session: Option<(&SessionKeys, &str, u64)>, body: Option<&serde_json::Value>) -> Request {
    let mut request = Request::new(method, path);
    if let Some((keys, user, now)) = session {
        let token = keys.issue(user, "test@test.com", now);
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
