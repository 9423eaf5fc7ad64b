//! HTTP routes of the auth service (`/api/users/*`), reference §2.1.

use serde_json::json;
use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::idempotency::{self, Work};
use ticketing_common::api::CurrentUserReply;
use ticketing_common::ids::UserId;
use ticketing_common::time::Timestamp;
use ticketing_common::session::{clear_cookie, configured, SessionKeys};
use ticketing_common::store::KeyValue;
use ticketing_common::validate::{Body, Email, Validation};
use ticketing_common::ApiError;

use crate::limits::{Blocked, Limiter, Limits};
use crate::password;
use crate::users::{self, Created, User};

/// Longest password sign-in hashes; sign-up allows 4 to 20 characters anyway.
pub const MAX_SIGNIN_PASSWORD_CHARS: usize = 100;

/// What a request needs besides itself.
pub struct Ctx<'a, S: KeyValue> {
    pub store: &'a S,
    /// `None` when the deployment has no usable `jwt_key`: a server fault, reported as such.
    pub keys: Option<&'a SessionKeys>,
    pub limits: Limits,
    pub now: Timestamp,
}

impl<S: KeyValue> Ctx<'_, S> {
    fn keys(&self) -> Result<&SessionKeys, ApiError> {
        configured(self.keys)
    }

    fn limiter(&self) -> Limiter<'_, S> {
        Limiter { store: self.store, limits: &self.limits, now: self.now }
    }
}

pub fn handle<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> Response {
    respond(route(ctx, request))
}

fn route<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    match (request.method.as_str(), request.segments().as_slice()) {
        // Nobody is signed in yet: an Idempotency-Key belongs to the client address.
        ("POST", ["api", "users", "signup"]) => {
            let owner = request.client_address();
            idempotency::once(ctx.store, ctx.keys()?, ctx.now, &owner, request, |work| sign_up(ctx, request, work))
        }
        ("POST", ["api", "users", "signin"]) => sign_in(ctx, request),
        ("POST", ["api", "users", "signout"]) => Ok(sign_out(request)),
        ("GET", ["api", "users", "currentuser"]) => current_user(ctx, request),
        _ => Err(ApiError::not_found()),
    }
}

/// 429 with `Retry-After`: the client may try again when the window ends.
fn too_many_attempts(blocked: Blocked) -> Response {
    Response::from(ApiError::new(429, "Too many attempts, try again later"))
        .with_header("retry-after", &blocked.retry_after.to_string())
}

/// `POST /api/users/signup {email, password}` → 201 `{id, email}` and a session; the user
/// gets the id of `work`, so an attempt that takes over one which died after storing the
/// user (same `Idempotency-Key`) answers with that user instead of "Email in use".
/// Every attempt counts towards the client address's sign-up limit.
fn sign_up<S: KeyValue>(ctx: &Ctx<S>, request: &Request, work: &Work) -> HandlerResult {
    if let Some(blocked) = ctx.limiter().signup_attempt(&request.client_address())? {
        return Ok(too_many_attempts(blocked));
    }
    let body = Body::parse(request)?;
    let typed = body.str("email").unwrap_or_default();
    let email = Email::normalise(typed);
    let password = body.trimmed("password");
    let mut v = Validation::new();
    email.check(&mut v);
    v.check((4..=20).contains(&password.chars().count()), "password", "Password must be between 4 and 20 characters");
    v.finish()?;
    let keys = ctx.keys()?;

    let id = UserId::from(work.id.as_str());
    if work.resumed {
        if let Some(user) = users::find_by_email(ctx.store, typed)?.filter(|user| user.id == id) {
            return Ok(signed_in(keys, ctx.now, request, &user, 201));
        }
    }
    let user = User { id, email, password_hash: password::hash(&password), created_at: ctx.now };
    match users::create(ctx.store, &user, typed, ctx.now)? {
        Created::EmailInUse => Err(ApiError::bad_request("Email in use")),
        Created::Yes => Ok(signed_in(keys, ctx.now, request, &user, 201)),
    }
}

/// `POST /api/users/signin {email, password}` → 200 `{id, email}` and a session.
/// Refused with 429 while the account or the client address has too many failures.
fn sign_in<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let body = Body::parse(request)?;
    let typed = body.str("email").unwrap_or_default();
    let email = Email::normalise(typed);
    let password = body.trimmed("password");
    let mut v = Validation::new();
    email.check(&mut v);
    v.check(!password.is_empty(), "password", "You must supply a password");
    v.max_chars(&password, MAX_SIGNIN_PASSWORD_CHARS, "password", "Password");
    v.finish()?;
    let keys = ctx.keys()?;

    let limiter = ctx.limiter();
    let address = request.client_address();
    if let Some(blocked) = limiter.check_signin(&email, &address)? {
        return Ok(too_many_attempts(blocked));
    }
    match users::find_by_email(ctx.store, typed)? {
        Some(user) if password::verify(&password, &user.password_hash) => Ok(signed_in(keys, ctx.now, request, &user, 200)),
        // One message for both failures, so sign-in does not reveal which e-mails exist.
        _ => {
            limiter.signin_failed(&email, &address)?;
            Err(ApiError::bad_request("Invalid credentials"))
        }
    }
}

fn signed_in(keys: &SessionKeys, now: Timestamp, request: &Request, user: &User, status: u16) -> Response {
    let token = keys.issue(&user.id, &user.email, now);
    Response::json(status, &user.view()).with_header("set-cookie", &keys.session_cookie(&token, request))
}

/// `POST /api/users/signout` → 200 `{}`, session cookie cleared.
fn sign_out(request: &Request) -> Response {
    Response::json(200, &json!({})).with_header("set-cookie", &clear_cookie(request))
}

/// `GET /api/users/currentuser` → `{currentUser: {id, email, iat} | null}`.
fn current_user<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let user = ctx.keys()?.current_user(request, ctx.now);
    Ok(Response::json(200, &CurrentUserReply { current_user: user }))
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
        limits: Limits,
        now: u64,
    }

    impl World {
        fn new() -> Self {
            Self { store: MemoryStore::default(), keys: SessionKeys::new(KEY, 3600).unwrap(), limits: Limits::default(), now: 1_800_000_000 }
        }

        fn call(&self, request: Request) -> Response {
            handle(&Ctx { store: &self.store, keys: Some(&self.keys), limits: self.limits, now: Timestamp::from_seconds(self.now) }, &request)
        }

        fn post(&self, path: &str, body: Value) -> Response {
            self.call(Request::new("POST", path).with_body(body.to_string()))
        }

        /// A POST from the client at `address`, as the gateway reports it.
        fn post_from(&self, address: &str, path: &str, body: Value) -> Response {
            self.call(Request::new("POST", path).with_header("x-forwarded-for", address).with_body(body.to_string()))
        }
    }

    /// An attempt that takes over one which stored the user and died before answering
    /// (same Idempotency-Key, so same work id) answers with that user, signed in.
    #[test]
    fn a_resumed_sign_up_answers_with_the_user_its_earlier_attempt_stored() {
        let w = World::new();
        let ctx = Ctx { store: &w.store, keys: Some(&w.keys), limits: w.limits, now: Timestamp::from_seconds(w.now) };
        let request = Request::new("POST", "/api/users/signup").with_body(json!({"email": "a@b.com", "password": "secret"}).to_string());
        let first = Work { id: "0000019a0000000000000001".into(), resumed: false };
        let created = sign_up(&ctx, &request, &first).unwrap();
        assert_eq!(created.status, 201);
        let again = sign_up(&ctx, &request, &Work { resumed: true, ..first }).unwrap();
        assert_eq!((again.status, json_of(&again)["id"].clone()), (201, json_of(&created)["id"].clone()));
        assert!(again.headers.iter().any(|(name, value)| name == "set-cookie" && value.starts_with("session=")));
        let other = sign_up(&ctx, &request, &Work { id: "0000019a0000000000000002".into(), resumed: true }).unwrap_err();
        assert_eq!(other.errors[0].message, "Email in use", "another request's work never finds this user");
    }

    fn message(res: &Response) -> (u16, String) {
        (res.status, json_of(res)["errors"][0]["message"].as_str().unwrap_or_default().to_string())
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
        let claims = w.keys.verify(&session_token(&res), Timestamp::from_seconds(w.now)).unwrap();
        assert_eq!(claims.id.as_str(), body["id"]);
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
        let res = handle(&Ctx { store: &w.store, keys: None, limits: w.limits, now: Timestamp::from_seconds(w.now) }, &Request::new("GET", "/api/users/currentuser"));
        assert_eq!(res.status, 500);
    }

    #[test]
    fn emails_are_one_account_in_any_case() {
        let w = World::new();
        let res = signup(&w, "  UPPER@Test.com ");
        assert_eq!((res.status, json_of(&res)["email"].clone()), (201, serde_json::json!("upper@test.com")));
        assert_eq!(message(&signup(&w, "upper@test.com")), (400, "Email in use".into()));
        for typed in ["upper@test.com", "UPPER@Test.com", "Upper@TEST.COM"] {
            let res = w.post("/api/users/signin", serde_json::json!({"email": typed, "password": "password"}));
            assert_eq!((res.status, json_of(&res)["email"].clone()), (200, serde_json::json!("upper@test.com")), "{typed}");
        }
    }

    #[test]
    fn a_user_stored_before_normalising_signs_in_and_keeps_the_address() {
        let w = World::new();
        let legacy = User { id: UserId::generate(), email: "Old@Test.com".into(), password_hash: password::hash("password"), created_at: Timestamp::from_seconds(1) };
        w.store.set(users::USERS, "Old@Test.com", &serde_json::to_vec(&legacy).unwrap()).unwrap();
        let res = w.post("/api/users/signin", serde_json::json!({"email": "Old@Test.com", "password": "password"}));
        assert_eq!((res.status, json_of(&res)["id"].clone()), (200, serde_json::json!(legacy.id)));
        assert_eq!(message(&signup(&w, "Old@Test.com")), (400, "Email in use".into()));
    }

    #[test]
    fn emails_and_sign_in_passwords_are_bounded() {
        let w = World::new();
        let long_email = format!("{}@test.com", "a".repeat(250));
        let too_long = serde_json::json!({"errors": [{"message": "Email must be at most 254 characters", "field": "email"}]});
        for path in ["/api/users/signup", "/api/users/signin"] {
            let res = w.post(path, serde_json::json!({"email": long_email, "password": "password"}));
            assert_eq!((res.status, json_of(&res)), (400, too_long.clone()), "{path}");
        }
        let longest = format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(57));
        assert_eq!(longest.len(), ticketing_common::validate::MAX_EMAIL_CHARS);
        assert_eq!(signup(&w, &longest).status, 201, "the longest address is fine");

        let res = w.post("/api/users/signin", serde_json::json!({"email": longest, "password": "p".repeat(101)}));
        assert_eq!(
            (res.status, json_of(&res)),
            (400, serde_json::json!({"errors": [{"message": "Password must be at most 100 characters", "field": "password"}]}))
        );
        let res = w.post("/api/users/signin", serde_json::json!({"email": longest, "password": "p".repeat(100)}));
        assert_eq!(message(&res), (400, "Invalid credentials".into()), "100 characters are checked as usual");
    }

    #[test]
    fn a_huge_body_is_a_413_and_stores_nothing() {
        let w = World::new();
        let res = w.post("/api/users/signup", serde_json::json!({"email": "a@test.com", "password": "password", "pad": "x".repeat(20_000)}));
        assert_eq!((res.status, json_of(&res)), (413, serde_json::json!({"errors": [{"message": "Request body is too large"}]})));
        assert!(w.store.list_keys(users::USERS).unwrap().is_empty());
    }

    #[test]
    fn repeated_failures_lock_the_account_until_the_window_passes() {
        let mut w = World::new();
        signup(&w, "owner@test.com");
        let wrong = serde_json::json!({"email": "owner@test.com", "password": "wrong"});
        let right = serde_json::json!({"email": "Owner@test.com", "password": "password"});
        for _ in 0..5 {
            assert_eq!(message(&w.post_from("1.1.1.1", "/api/users/signin", wrong.clone())), (400, "Invalid credentials".into()));
        }
        w.now += 60;
        let res = w.post_from("2.2.2.2", "/api/users/signin", right.clone());
        assert_eq!(
            (res.status, json_of(&res)),
            (429, serde_json::json!({"errors": [{"message": "Too many attempts, try again later"}]})),
            "even the right password, from anywhere, during the window"
        );
        assert_eq!(res.header("retry-after"), Some("840"));
        assert!(res.header("set-cookie").is_none());

        w.now += 840;
        let res = w.post_from("2.2.2.2", "/api/users/signin", right);
        assert_eq!(res.status, 200, "the owner gets in once the window has passed");
    }

    #[test]
    fn repeated_failures_from_one_address_lock_that_address() {
        let w = World::new();
        signup(&w, "owner@test.com");
        for i in 0..50 {
            let res = w.post_from("6.6.6.6", "/api/users/signin", serde_json::json!({"email": format!("u{i}@test.com"), "password": "x"}));
            assert_eq!(res.status, 400);
        }
        let right = serde_json::json!({"email": "owner@test.com", "password": "password"});
        assert_eq!(w.post_from("6.6.6.6", "/api/users/signin", right.clone()).status, 429);
        assert_eq!(w.post_from("7.7.7.7", "/api/users/signin", right).status, 200, "other addresses are not affected");
    }

    #[test]
    fn invalid_sign_ins_and_successes_do_not_count_as_failures() {
        let w = World::new();
        signup(&w, "owner@test.com");
        for _ in 0..10 {
            assert_eq!(w.post("/api/users/signin", serde_json::json!({"email": "owner@test.com"})).status, 400);
            assert_eq!(w.post("/api/users/signin", serde_json::json!({"email": "owner@test.com", "password": "password"})).status, 200);
        }
    }

    #[test]
    fn a_sign_up_flood_from_one_address_is_refused() {
        let mut w = World::new();
        w.limits.signups_per_address = crate::limits::Rule { max: 3, window_seconds: 600 };
        for i in 0..3 {
            assert_eq!(w.post_from("6.6.6.6", "/api/users/signup", serde_json::json!({"email": format!("u{i}@test.com"), "password": "password"})).status, 201);
        }
        let res = w.post_from("6.6.6.6", "/api/users/signup", serde_json::json!({"email": "late@test.com", "password": "password"}));
        assert_eq!((res.status, res.header("retry-after")), (429, Some("600")));
        assert_eq!(json_of(&res), serde_json::json!({"errors": [{"message": "Too many attempts, try again later"}]}));
        assert!(!w.store.exists(users::USERS, "late@test.com").unwrap(), "a refused sign-up stores nothing");
        assert_eq!(w.post_from("7.7.7.7", "/api/users/signup", serde_json::json!({"email": "late@test.com", "password": "password"})).status, 201);
    }

    fn signup_with_key(world: &World, address: &str, key: &str, email: &str) -> Response {
        let body = serde_json::json!({"email": email, "password": "password"}).to_string();
        world.call(Request::new("POST", "/api/users/signup").with_header("x-forwarded-for", address).with_header("idempotency-key", key).with_body(body))
    }

    #[test]
    fn a_sign_up_retried_with_its_idempotency_key_gets_the_same_user_and_session() {
        let w = World::new();
        let first = signup_with_key(&w, "1.1.1.1", "k1", "a@test.com");
        let again = signup_with_key(&w, "1.1.1.1", "k1", "a@test.com");
        assert_eq!(first.status, 201);
        assert_eq!((again.status, json_of(&again)), (201, json_of(&first)), "not 'Email in use'");
        assert_eq!(again.header("set-cookie"), first.header("set-cookie"));
        assert_eq!(w.store.list_keys(users::USERS).unwrap(), vec!["a@test.com"]);

        let other_body = signup_with_key(&w, "1.1.1.1", "k1", "b@test.com");
        assert_eq!(message(&other_body), (422, "This Idempotency-Key was used with another request".into()));
        let other_client = signup_with_key(&w, "2.2.2.2", "k1", "a@test.com");
        assert_eq!(message(&other_client), (400, "Email in use".into()), "another address's key is its own");
        assert!(other_client.header("set-cookie").is_none());
        let bad_key = signup_with_key(&w, "1.1.1.1", &"k".repeat(256), "c@test.com");
        assert_eq!(json_of(&bad_key)["errors"][0]["field"], "Idempotency-Key");
    }

    #[test]
    fn an_address_claimed_without_its_user_is_no_account_and_can_sign_up_later() {
        let w = World::new();
        ticketing_common::lease::take(&w.store, users::EMAIL_CLAIMS, "a@test.com", Timestamp::from_seconds(w.now)).unwrap(); // sign-up died here
        let signin = w.post("/api/users/signin", serde_json::json!({"email": "a@test.com", "password": "password"}));
        assert_eq!(message(&signin), (400, "Invalid credentials".into()));
        assert_eq!(message(&signup(&w, "a@test.com")), (400, "Email in use".into()), "maybe still signing up");
        let later = World { now: w.now + users::ABANDONED_AFTER_MS / 1000, ..w };
        assert_eq!(signup(&later, "a@test.com").status, 201);
        let signin = later.post("/api/users/signin", serde_json::json!({"email": "a@test.com", "password": "password"}));
        assert_eq!(signin.status, 200);
    }

    /// A store outage from any write of a sign-up on (the rate limit's, the claim's, the
    /// user's, the idempotency record's): once the store is back, the client's retry with
    /// the same key signs up, and signing in works.
    #[test]
    fn a_sign_up_cut_short_at_any_write_succeeds_when_retried() {
        use ticketing_common::testing::FlakyStore;
        let keys = SessionKeys::new(KEY, 3600).unwrap();
        let call = |store: &FlakyStore, now: u64, request: Request| handle(&Ctx { store, keys: Some(&keys), limits: Limits::default(), now: Timestamp::from_seconds(now) }, &request);
        let signup = |key: &str| {
            let body = serde_json::json!({"email": "a@test.com", "password": "password"}).to_string();
            Request::new("POST", "/api/users/signup").with_header("idempotency-key", key).with_body(body)
        };
        let now = 1_800_000_000;
        let probe = FlakyStore::default();
        assert_eq!(call(&probe, now, signup("k")).status, 201);
        let writes = probe.writes();
        assert!(writes >= 7, "{writes}");
        for n in 1..=writes {
            let store = FlakyStore::default();
            store.outage_from_write(n);
            let first = call(&store, now, signup("k"));
            store.heal();
            let mut retry = call(&store, now + 1, signup("k"));
            if retry.status == 409 {
                // The store could not mark the request finished: it expires.
                retry = call(&store, now + 61, signup("k"));
            }
            let user = if first.status == 201 {
                // Answered, but the answer may not have been kept (the last write): a
                // late retry then runs again and finds the address taken, by itself.
                assert!(json_of(&retry)["id"] == json_of(&first)["id"] || message(&retry) == (400, "Email in use".into()), "write {n}");
                json_of(&first)["id"].clone()
            } else {
                assert_eq!(retry.status, 201, "write {n}: first {}, retry {:?}", first.status, String::from_utf8_lossy(&retry.body));
                json_of(&retry)["id"].clone()
            };
            let signin = call(&store, now + 62, Request::new("POST", "/api/users/signin").with_body(r#"{"email":"a@test.com","password":"password"}"#));
            assert_eq!((signin.status, json_of(&signin)["id"].clone()), (200, user), "write {n}");
        }
    }
}
