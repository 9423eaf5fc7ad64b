//! HTTP routes of the auth service (`/api/users/*`).

use serde_json::json;
use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::ApiError;

pub fn handle(request: Request) -> Response {
    respond(route(&request))
}

fn route(request: &Request) -> HandlerResult {
    match (request.method.as_str(), request.segments().as_slice()) {
        ("GET", ["api", "users", "currentuser"]) => current_user(request),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/users/currentuser`: who is signed in, or `null`.
fn current_user(_request: &Request) -> HandlerResult {
    Ok(Response::json(200, &json!({ "currentUser": null })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_current_user_is_null() {
        let res = handle(Request::new("GET", "/api/users/currentuser"));
        assert_eq!(res.status, 200);
        assert_eq!(res.body, br#"{"currentUser":null}"#.to_vec());
    }

    #[test]
    fn unknown_routes_are_json_404s() {
        for (method, path) in [("GET", "/api/users/doesnotexist"), ("DELETE", "/api/users/currentuser"), ("GET", "/api/users")] {
            let res = handle(Request::new(method, path));
            assert_eq!(res.status, 404, "{method} {path}");
            assert_eq!(res.body, br#"{"errors":[{"message":"Not Found"}]}"#.to_vec());
        }
    }
}
