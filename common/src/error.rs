//! The one error shape every service answers with:
//! `{"errors":[{"message": "...", "field": "..."}]}` plus an HTTP status.

use serde::{Deserialize, Serialize};

/// One entry of the `errors` array. `field` names the request field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// An error response: a status code and the messages to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub errors: Vec<ErrorItem>,
}

#[derive(Serialize)]
struct ErrorBody {
    errors: Vec<ErrorItem>,
}

impl ApiError {
    /// An error with a single message and no field.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, errors: vec![ErrorItem { message: message.into(), field: None }] }
    }

    /// 400 with a message for the client, e.g. `Email in use`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401 `Not authorized`.
    pub fn not_authorized() -> Self {
        Self::new(401, "Not authorized")
    }

    /// 404 `Not Found`, also the answer for unknown routes.
    pub fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    /// 413 `Request body is too large`.
    pub fn too_large() -> Self {
        Self::new(413, "Request body is too large")
    }

    /// The JSON body, `{"errors":[...]}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody { errors: self.errors.clone() })
            .expect("serialising strings cannot fail")
    }

}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<&str> = self.errors.iter().map(|e| e.message.as_str()).collect();
        write!(f, "{} {}", self.status, messages.join("; "))
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_has_the_reference_body() {
        let err = ApiError::not_found();
        assert_eq!(err.status, 404);
        assert_eq!(err.body(), r#"{"errors":[{"message":"Not Found"}]}"#);
    }

    #[test]
    fn field_is_written_only_when_present() {
        let err = ApiError {
            status: 400,
            errors: vec![
                ErrorItem { message: "Email must be valid".into(), field: Some("email".into()) },
                ErrorItem { message: "Email in use".into(), field: None },
            ],
        };
        assert_eq!(
            err.body(),
            r#"{"errors":[{"message":"Email must be valid","field":"email"},{"message":"Email in use"}]}"#
        );
    }

    #[test]
    fn not_authorized_has_the_reference_message() {
        let err = ApiError::not_authorized();
        assert_eq!((err.status, err.body()), (401, r#"{"errors":[{"message":"Not authorized"}]}"#.to_string()));
    }
}
