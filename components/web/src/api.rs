//! The services' HTTP API as the pages use it: a call with the browser's session, and
//! the answer with the `Set-Cookie` headers to pass back.

use serde_json::Value;

pub struct ApiReply {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub body: Value,
    /// The next page's cursor of a paged list (`X-Next-Cursor`).
    pub next_cursor: Option<String>,
}

impl ApiReply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer read as the API type `T` (see `ticketing_common::api`); `None` when it
    /// is not one (an error answer, or a service out of step with this client).
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.body.clone()).ok()
    }

    /// The `errors[].message` of an error answer.
    pub fn messages(&self) -> Vec<String> {
        match self.body["errors"].as_array() {
            Some(errors) => errors.iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect(),
            None if self.ok() => Vec::new(),
            None => vec![format!("Something went wrong ({})", self.status)],
        }
    }
}

/// One API call on behalf of the browser whose request is being served.
pub trait Api {
    /// `Err` when the API did not answer at all.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<ApiReply, String>;
}
