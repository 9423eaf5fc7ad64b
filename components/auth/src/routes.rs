//! HTTP routes of the auth service (`/api/users/*`), reference §2.1.

use serde_json::json;
use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::ids::new_id;
use ticketing_common::session::{clear_cookie, configured, SessionKeys};
use ticketing_common::store::KeyValue;
use ticketing_common::validate::{is_email, Body, Validation};
use ticketing_common::ApiError;

use crate::password;
use crate::users::{self, Created, User};

/// What a request needs besides itself.
pub struct Ctx<'a, S: KeyValue> {
    pub store: &'a S,
    /// `None` when the deployment has no usable `jwt_key`: a server fault, reported as such.
    pub keys: Option<&'a SessionKeys>,
    pub now: u64,
}

impl<S: KeyValue> Ctx<'_, S> {
    fn keys(&self) -> Result<&SessionKeys, ApiError> {
        configured(self.keys)
    }
}

pub fn handle<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> Response {
    respond(route(ctx, request))
}

fn route<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    match (request.method.as_str(), request.segments().as_slice()) {
        ("POST", ["api", "users", "signup"]) => sign_up(ctx, request),
        ("POST", ["api", "users", "signin"]) => sign_in(ctx, request),
        ("POST", ["api", "users", "signout"]) => Ok(sign_out(request)),
        ("GET", ["api", "users", "currentuser"]) => current_user(ctx, request),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /api/users/signup {email, password}` → 201 `{id, email}` and a session.
fn sign_up<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let body = Body::parse(request)?;
    let email = body.str("email").unwrap_or_default().to_string();
    let password = body.trimmed("password");
    let mut v = Validation::new();
    v.check(is_email(&email), "email", "Email must be valid");
    v.check((4..=20).contains(&password.chars().count()), "password", "Password must be between 4 and 20 characters");
    v.finish()?;
    let keys = ctx.keys()?;

    let user = User { id: new_id(), email, password_hash: password::hash(&password), created_at: ctx.now };
    match users::create(ctx.store, &user)? {
        Created::EmailInUse => Err(ApiError::bad_request("Email in use")),
        Created::Yes => Ok(signed_in(keys, ctx.now, request, &user, 201)),
    }
}

/// `POST /api/users/signin {email, password}` → 200 `{id, email}` and a session.
fn sign_in<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let body = Body::parse(request)?;
    let email = body.str("email").unwrap_or_default();
    let password = body.trimmed("password");
    let mut v = Validation::new();
    v.check(is_email(email), "email", "Email must be valid");
    v.check(!password.is_empty(), "password", "You must supply a password");
    v.finish()?;
    let keys = ctx.keys()?;

    // One message for both failures, so sign-in does not reveal which e-mails exist.
    let invalid = || ApiError::bad_request("Invalid credentials");
    let user = users::find_by_email(ctx.store, email)?.ok_or_else(invalid)?;
    if !password::verify(&password, &user.password_hash) {
        return Err(invalid());
    }
    Ok(signed_in(keys, ctx.now, request, &user, 200))
}

fn signed_in(keys: &SessionKeys, now: u64, request: &Request, user: &User, status: u16) -> Response {
    let token = keys.issue(&user.id, &user.email, now);
    Response::json(status, &user.public()).with_header("set-cookie", &keys.session_cookie(&token, request))
}

/// `POST /api/users/signout` → 200 `{}`, session cookie cleared.
fn sign_out(request: &Request) -> Response {
    Response::json(200, &json!({})).with_header("set-cookie", &clear_cookie(request))
}

/// `GET /api/users/currentuser` → `{currentUser: {id, email, iat} | null}`.
fn current_user<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let user = ctx.keys()?.current_user(request, ctx.now);
    Ok(Response::json(200, &json!({ "currentUser": user })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use ticketing_common::store::MemoryStore;
    use ticketing_common::testing::{TEST_KEY as KEY};


    struct World {
        store: MemoryStore,
        keys: SessionKeys,
        now: u64,
    }

    impl World {
        fn new() -> Self {
            Self { store: MemoryStore::default(), keys: SessionKeys::new(KEY, 3600).unwrap(), now: 1_700_000_000 }
        }

        fn call(&self, request: Request) -> Response {
            handle(&Ctx { store: &self.store, keys: Some(&self.keys), now: self.now }, &request)
        }

        fn post(&self, path: &str, body: Value) -> Response {
            self.call(Request::new("POST", path).with_body(body.to_string()))
        }
    }

    fn json_of(res: &Response) -> Value {
        serde_json::from_slice(&res.body).unwrap()
    }

    fn session_token(res: &Response) -> String {
        let cookie = res.header("set-cookie").expect("a session cookie");
        cookie.strip_prefix("session=").unwrap().split(';').next().unwrap().to_string()
    }

    fn signup(world: &World, email: &str) -> Response {
        world.post("/api/users/signup", serde_json::json!({"email": email, "password": "password"}))
    }

    #[test]
    fn signup_returns_201_the_user_and_a_session() {
        let w = World::new();
        let res = signup(&w, "test@test.com");
        assert_eq!(res.status, 201);
        let body = json_of(&res);
        assert_eq!(body["email"], "test@test.com");
        assert_eq!(body.as_object().unwrap().len(), 2, "only id and email: {body}");
        let claims = w.keys.verify(&session_token(&res), w.now).unwrap();
        assert_eq!(claims.id, body["id"]);
    }

    #[test]
    fn signup_validation_messages_and_fields() {
        let w = World::new();
        let res = w.post("/api/users/signup", serde_json::json!({"email": "alskdflaskjfd", "password": "password"}));
        assert_eq!(res.status, 400);
        assert_eq!(json_of(&res), serde_json::json!({"errors": [{"message": "Email must be valid", "field": "email"}]}));

        let res = w.post("/api/users/signup", serde_json::json!({"email": "test@test.com", "password": "p"}));
        assert_eq!(json_of(&res)["errors"][0]["field"], "password");
        assert_eq!(json_of(&res)["errors"][0]["message"], "Password must be between 4 and 20 characters");

        let res = w.post("/api/users/signup", serde_json::json!({}));
        assert_eq!(res.status, 400);
        let body = json_of(&res);
        let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["email", "password"]);

        let res = w.post("/api/users/signup", serde_json::json!({"email": "test@test.com", "password": "x".repeat(21)}));
        assert_eq!(res.status, 400);
        let res = w.post("/api/users/signup", serde_json::json!({"email": "test@test.com", "password": "   abc   "}));
        assert_eq!(res.status, 400, "password is trimmed before the length check");
        assert!(!w.store.exists(users::USERS, "test@test.com").unwrap(), "a rejected request stores nothing");
    }

    #[test]
    fn duplicate_email_is_rejected() {
        let w = World::new();
        assert_eq!(signup(&w, "test@test.com").status, 201);
        let res = signup(&w, "test@test.com");
        assert_eq!(res.status, 400);
        assert_eq!(json_of(&res), serde_json::json!({"errors": [{"message": "Email in use"}]}));
    }

    #[test]
    fn signin_checks_credentials_with_one_message() {
        let w = World::new();
        let res = w.post("/api/users/signin", serde_json::json!({"email": "nobody@test.com", "password": "password"}));
        assert_eq!((res.status, json_of(&res)["errors"][0]["message"].as_str()), (400, Some("Invalid credentials")));

        signup(&w, "test@test.com");
        let res = w.post("/api/users/signin", serde_json::json!({"email": "test@test.com", "password": "wrong"}));
        assert_eq!((res.status, json_of(&res)["errors"][0]["message"].as_str()), (400, Some("Invalid credentials")));

        let res = w.post("/api/users/signin", serde_json::json!({"email": "test@test.com", "password": "password"}));
        assert_eq!(res.status, 200);
        assert_eq!(json_of(&res)["email"], "test@test.com");
        assert!(!session_token(&res).is_empty());

        let res = w.post("/api/users/signin", serde_json::json!({"email": "test@test.com", "password": "  "}));
        assert_eq!(json_of(&res)["errors"][0]["message"], "You must supply a password");
    }

    #[test]
    fn current_user_follows_the_cookie_and_signout_clears_it() {
        let w = World::new();
        let token = session_token(&signup(&w, "test@test.com"));
        let res = w.call(Request::new("GET", "/api/users/currentuser").with_header("cookie", &format!("session={token}")));
        let body = json_of(&res);
        assert_eq!(body["currentUser"]["email"], "test@test.com");
        assert_eq!(body["currentUser"]["iat"], w.now);

        let res = w.call(Request::new("GET", "/api/users/currentuser").with_header("cookie", "session=forged"));
        assert_eq!(json_of(&res), serde_json::json!({"currentUser": null}));

        let res = w.post("/api/users/signout", serde_json::json!({}));
        assert_eq!((res.status, json_of(&res)), (200, serde_json::json!({})));
        assert!(res.header("set-cookie").unwrap().starts_with("session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly"));
    }

    #[test]
    fn malformed_json_is_a_400_and_unknown_routes_404() {
        let w = World::new();
        let res = w.call(Request::new("POST", "/api/users/signup").with_body("{nope"));
        assert_eq!(res.status, 400);
        let res = w.call(Request::new("GET", "/api/users/doesnotexist"));
        assert_eq!((res.status, json_of(&res)), (404, serde_json::json!({"errors": [{"message": "Not Found"}]})));
    }

    #[test]
    fn storage_outage_is_a_500_not_a_crash() {
        let w = World::new();
        w.store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(signup(&w, "test@test.com").status, 500);
    }

    #[test]
    fn missing_jwt_key_is_a_server_error() {
        let w = World::new();
        let res = handle(&Ctx { store: &w.store, keys: None, now: w.now }, &Request::new("GET", "/api/users/currentuser"));
        assert_eq!(res.status, 500);
    }
}
