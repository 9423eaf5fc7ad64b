//! Plain HTTP request/response values, independent of any bindings, so that every
//! service's routes are ordinary Rust functions that unit tests can call natively.

use serde::Serialize;

use crate::error::ApiError;

/// Longest client address kept (an IPv6 address with a zone fits).
pub const MAX_ADDRESS_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path without the query string, e.g. `/api/users/currentuser`.
    pub path: String,
    pub query: Option<String>,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body (handy in tests).
    pub fn new(method: &str, path_with_query: &str) -> Self {
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path_with_query.to_string(), None),
        };
        Self { method: method.to_ascii_uppercase(), path, query, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The client's address as the gateway reports it in `x-forwarded-for` (the last entry,
    /// the one the nearest proxy added), at most [`MAX_ADDRESS_CHARS`] characters;
    /// `unknown` when absent. Keys rate limits, so it must be bounded.
    pub fn client_address(&self) -> String {
        let last = self.header("x-forwarded-for").and_then(|v| v.rsplit(',').next()).map(str::trim).unwrap_or("");
        match last {
            "" => "unknown".to_string(),
            address => address.chars().take(MAX_ADDRESS_CHARS).collect(),
        }
    }

    /// The first value of query parameter `name`, percent-decoded (`Some("")` for `?name=`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The path split into its non-empty segments: `/api/tickets/1` → `["api","tickets","1"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response of any serialisable value.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).expect("our response types always serialise");
        Self { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }

    /// A response without a body, e.g. 204.
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl From<ApiError> for Response {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: error.body().into_bytes(),
        }
    }
}

/// Route handlers return this; errors become the common JSON error response.
pub type HandlerResult = Result<Response, ApiError>;

/// Turns a handler's result into the response to send.
pub fn respond(result: HandlerResult) -> Response {
    result.unwrap_or_else(Response::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_path_and_query() {
        let r = Request::new("get", "/api/tickets/abc?x=1");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/tickets/abc");
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.segments(), vec!["api", "tickets", "abc"]);
    }

    #[test]
    fn query_parameters_are_decoded_first_one_wins() {
        let r = Request::new("GET", "/api/tickets?limit=5&cursor=a%2Eb&limit=7&empty=");
        assert_eq!(r.query_param("limit").as_deref(), Some("5"));
        assert_eq!(r.query_param("cursor").as_deref(), Some("a.b"));
        assert_eq!(r.query_param("empty").as_deref(), Some(""));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(Request::new("GET", "/api/tickets").query_param("limit"), None);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let r = Request::new("GET", "/").with_header("Cookie", "a=b");
        assert_eq!(r.header("cookie"), Some("a=b"));
        assert_eq!(r.header("COOKIE"), Some("a=b"));
        assert_eq!(r.header("x"), None);
    }

    #[test]
    fn client_address_is_the_last_forwarded_entry_bounded() {
        assert_eq!(Request::new("GET", "/").client_address(), "unknown");
        assert_eq!(Request::new("GET", "/").with_header("x-forwarded-for", " ").client_address(), "unknown");
        let one = Request::new("GET", "/").with_header("X-Forwarded-For", " 203.0.113.7 ");
        assert_eq!(one.client_address(), "203.0.113.7");
        let chain = Request::new("GET", "/").with_header("x-forwarded-for", "1.2.3.4, 198.51.100.2");
        assert_eq!(chain.client_address(), "198.51.100.2", "the entry our own gateway added");
        let long = Request::new("GET", "/").with_header("x-forwarded-for", &"é".repeat(1000));
        assert_eq!(long.client_address(), "é".repeat(MAX_ADDRESS_CHARS));
    }

    #[test]
    fn errors_become_json_responses() {
        let res = respond(Err(ApiError::not_found()));
        assert_eq!(res.status, 404);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.body, br#"{"errors":[{"message":"Not Found"}]}"#.to_vec());
    }
}
