//! Request bodies: JSON parsing that never panics, and validation that reports every
//! failing field at once, as `{message, field}` entries of a 400.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorItem};
use crate::http::Request;

/// Largest JSON body a route reads: every valid request of the API is far smaller, and
/// parsing stays cheap. (The gateway and the wasm adapter cap all bodies at 1 MiB first.)
pub const MAX_JSON_BODY_BYTES: usize = 16 * 1024;

/// Longest e-mail address accepted (RFC 5321's limit on a forward path).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A request's JSON object body. An empty body counts as `{}` so that missing fields
/// are reported by validation, like the reference app does.
#[derive(Debug, Clone, Default)]
pub struct Body(Map<String, Value>);

impl Body {
    pub fn parse(request: &Request) -> Result<Body, ApiError> {
        Self::from_bytes(&request.body)
    }

    /// Refuses bodies over [`MAX_JSON_BODY_BYTES`] with a 413 before parsing them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Body, ApiError> {
        if bytes.len() > MAX_JSON_BODY_BYTES {
            return Err(ApiError::too_large());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
            Err(_) => Err(ApiError::bad_request("Request body must be valid JSON")),
        }
    }

    pub fn value(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    /// The field if it is a string (other JSON types count as absent).
    pub fn str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(Value::as_str)
    }

    /// The field trimmed if it is a string, else the empty string.
    pub fn trimmed(&self, field: &str) -> String {
        self.str(field).map(|s| s.trim().to_string()).unwrap_or_default()
    }
}

/// Collects validation failures; `finish` turns them into one 400.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<ErrorItem>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.errors.push(ErrorItem { message: message.to_string(), field: Some(field.to_string()) });
        }
        self
    }

    /// Records `<label> must be at most <max> characters` for `field` when `value` is longer.
    pub fn max_chars(&mut self, value: &str, max: usize, field: &str, label: &str) -> &mut Self {
        let ok = value.chars().count() <= max;
        self.check(ok, field, &format!("{label} must be at most {max} characters"))
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError { status: 400, errors: self.errors })
        }
    }
}

/// An e-mail address in the one form that identifies its account: trimmed and
/// lower-case, so `Ann@X.com` and `ann@x.com ` are one account. A string on the wire
/// and in the store (`serde(transparent)`); users stored before e-mails were normalised
/// still read back as they were typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The normalised form of what a client typed (not yet checked, see [`Email::check`]).
    pub fn normalise(typed: &str) -> Email {
        Email(typed.trim().to_lowercase())
    }

    /// Reports what is wrong with it, if anything, as the `email` field: too long
    /// first, else not an address.
    pub fn check(&self, v: &mut Validation) {
        if self.0.chars().count() > MAX_EMAIL_CHARS {
            v.max_chars(&self.0, MAX_EMAIL_CHARS, "email", "Email");
        } else {
            v.check(is_email(&self.0), "email", "Email must be valid");
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An address from a trusted place (the store, a verified session), taken as it is.
impl From<&str> for Email {
    fn from(email: &str) -> Self {
        Email(email.to_string())
    }
}

impl std::ops::Deref for Email {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for Email {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A practical e-mail check: one `@`, a non-empty local part without spaces, and a
/// dotted domain of letters, digits and hyphens whose last label is at least 2 letters.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || domain.contains('@') {
        return false;
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control() || "()<>[]:;\\,\"".contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
    };
    let tld = labels[labels.len() - 1];
    labels.iter().all(label_ok) && tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_object() {
        let body = Body::from_bytes(b"").unwrap();
        assert_eq!(body.str("email"), None);
        assert_eq!(body.trimmed("email"), "");
    }

    #[test]
    fn malformed_and_non_object_bodies_are_400s() {
        let err = Body::from_bytes(b"{\"email\":").unwrap_err();
        assert_eq!((err.status, err.errors[0].message.as_str()), (400, "Request body must be valid JSON"));
        let err = Body::from_bytes(b"[1,2]").unwrap_err();
        assert_eq!((err.status, err.errors[0].message.as_str()), (400, "Request body must be a JSON object"));
    }

    #[test]
    fn bodies_over_the_bound_are_413s_before_parsing() {
        let padding = " ".repeat(MAX_JSON_BODY_BYTES - 2);
        assert!(Body::from_bytes(format!("{{{padding}}}").as_bytes()).is_ok(), "exactly at the bound");
        let err = Body::from_bytes(format!("{{{padding} }}").as_bytes()).unwrap_err();
        assert_eq!(err.body(), r#"{"errors":[{"message":"Request body is too large"}]}"#);
        assert_eq!(err.status, 413);
        let err = Body::parse(&Request::new("POST", "/").with_body(vec![b'x'; 200_000])).unwrap_err();
        assert_eq!(err.status, 413, "checked before the JSON is looked at");
    }

    #[test]
    fn max_chars_counts_characters_not_bytes() {
        let mut v = Validation::new();
        v.max_chars(&"é".repeat(100), 100, "title", "Title");
        assert!(v.finish().is_ok());
        let mut v = Validation::new();
        v.max_chars(&"a".repeat(101), 100, "title", "Title");
        assert_eq!(v.finish().unwrap_err().body(), r#"{"errors":[{"message":"Title must be at most 100 characters","field":"title"}]}"#);
    }

    #[test]
    fn non_string_fields_count_as_absent() {
        let body = Body::from_bytes(br#"{"email": 42, "password": "  pw  "}"#).unwrap();
        assert_eq!(body.str("email"), None);
        assert_eq!(body.trimmed("password"), "pw");
    }

    #[test]
    fn validation_reports_every_failure_in_order() {
        let mut v = Validation::new();
        v.check(false, "email", "Email must be valid").check(true, "x", "never").check(false, "password", "Too short");
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.body(),
            r#"{"errors":[{"message":"Email must be valid","field":"email"},{"message":"Too short","field":"password"}]}"#
        );
        assert!(Validation::new().finish().is_ok());
    }

    #[test]
    fn emails_are_normalised_then_checked() {
        let email = Email::normalise("  Ann@Example.COM ");
        assert_eq!(email, "ann@example.com");
        assert_eq!(serde_json::to_string(&email).unwrap(), r#""ann@example.com""#);
        let mut v = Validation::new();
        email.check(&mut v);
        assert!(v.finish().is_ok());
        let mut v = Validation::new();
        Email::normalise("nope").check(&mut v);
        Email::normalise(&format!("{}@x.com", "a".repeat(300))).check(&mut v);
        let errors = v.finish().unwrap_err().errors;
        assert_eq!(errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["Email must be valid", "Email must be at most 254 characters"]);
    }

    #[test]
    fn email_check() {
        for good in ["test@test.com", "a.b+c@sub.example.org", "x@y.io", "üser@exämple.de"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "test", "test@", "@test.com", "a@b", "a b@c.com", "a@b..com", "a@-b.com", "a@b.c", "a@@b.com", "a@b.123", ".a@b.com"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
