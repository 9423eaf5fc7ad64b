//! Sessions: an HS256 JWT with `id`, `email`, `iat`, `exp` in the `session` cookie.
//! A missing, expired, malformed or tampered token simply means "not signed in".

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::Request;
use crate::ids::UserId;
use crate::time::Timestamp;

pub const COOKIE_NAME: &str = "session";
/// How long a session lasts unless configured otherwise.
pub const DEFAULT_TTL_SECONDS: u64 = 24 * 60 * 60;
/// Shortest signing key accepted: HS256 keys shorter than this are guessable.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub id: UserId,
    pub email: String,
    pub iat: u64,
    pub exp: u64,
}

/// The signed-in user as the reference app exposes it: `{id, email, iat}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub email: String,
    pub iat: u64,
}

pub struct SessionKeys {
    /// The shared secret, also for [`SessionKeys::mac`].
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: u64,
}

impl SessionKeys {
    /// Keys from the shared secret (`jwt_key`, a wasmCloud secret of each service).
    pub fn new(secret: &str, ttl_seconds: u64) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!("the JWT key must be at least {MIN_KEY_BYTES} bytes"));
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            ttl_seconds,
        })
    }

    pub fn issue(&self, id: &str, email: &str, now: Timestamp) -> String {
        let claims = Claims { id: id.into(), email: email.into(), iat: now.seconds(), exp: now.seconds() + self.ttl_seconds };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// HMAC-SHA256 (hex) of `data` under the deployment's secret, for `purpose` (which
    /// keeps these MACs apart from each other and from token signatures). Lets a service
    /// store a fingerprint of a request body that holds a password without making that
    /// password guessable from the store.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The claims of a valid, unexpired token signed with our key.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock, so tests can move time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?.claims;
        (claims.exp > now.seconds()).then_some(claims)
    }

    /// The user of the request's session cookie, if any.
    pub fn current_user(&self, request: &Request, now: Timestamp) -> Option<CurrentUser> {
        let token = cookie(request, COOKIE_NAME)?;
        let claims = self.verify(token, now)?;
        Some(CurrentUser { id: claims.id, email: claims.email, iat: claims.iat })
    }

    /// Like [`Self::current_user`], but a 401 when nobody is signed in.
    pub fn require_user(&self, request: &Request, now: Timestamp) -> Result<CurrentUser, ApiError> {
        self.current_user(request, now).ok_or_else(ApiError::not_authorized)
    }

    /// `Set-Cookie` value that starts a session.
    pub fn session_cookie(&self, token: &str, request: &Request) -> String {
        format!(
            "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.ttl_seconds,
            secure_attribute(request)
        )
    }
}

/// The deployment's keys, or the 500 that a missing `jwt_key` deserves (a server fault,
/// not the client's).
pub fn configured(keys: Option<&SessionKeys>) -> Result<&SessionKeys, ApiError> {
    keys.ok_or_else(|| ApiError::new(500, "Sessions are not configured (jwt_key)"))
}

/// `Set-Cookie` value that ends the session (the reference app's exact form, plus SameSite).
pub fn clear_cookie(request: &Request) -> String {
    format!(
        "{COOKIE_NAME}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly; samesite=lax{}",
        secure_attribute(request).to_lowercase()
    )
}

/// `Secure` only when the client reached us over HTTPS (a TLS proxy says so).
fn secure_attribute(request: &Request) -> &'static str {
    match request.header("x-forwarded-proto") {
        Some(proto) if proto.trim().eq_ignore_ascii_case("https") => "; Secure",
        _ => "",
    }
}

/// The value of a cookie from the `Cookie` header(s).
pub fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Timestamp {
        Timestamp::from_seconds(seconds)
    }

    const KEY: &str = "a-test-key-that-is-long-enough-for-hs256";

    fn keys() -> SessionKeys {
        SessionKeys::new(KEY, 3600).unwrap()
    }

    fn with_cookie(token: &str) -> Request {
        Request::new("GET", "/").with_header("cookie", &format!("theme=dark; session={token}; x=y"))
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let token = keys().issue("5ec00000abababababababab", "a@b.com", secs(1000));
        let claims = keys().verify(&token, secs(1000)).unwrap();
        assert_eq!(claims, Claims { id: "5ec00000abababababababab".into(), email: "a@b.com".into(), iat: 1000, exp: 4600 });
        assert!(keys().verify(&token, secs(4599)).is_some());
        assert!(keys().verify(&token, secs(4600)).is_none());
    }

    #[test]
    fn tampered_or_foreign_tokens_are_rejected() {
        let token = keys().issue("id", "a@b.com", secs(1000));
        let other = SessionKeys::new("another-key-that-is-long-enough-for-hs256", 3600).unwrap();
        assert!(other.verify(&token, secs(1000)).is_none());
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(keys().verify(&parts.join("."), secs(1000)).is_none());
        assert!(keys().verify("not-a-jwt", secs(1000)).is_none());
        assert!(keys().verify("", secs(1000)).is_none());
    }

    #[test]
    fn unsigned_tokens_are_rejected() {
        // header {"alg":"none"} + claims, no signature
        let token = "eyJhbGciOiJub25lIn0.eyJpZCI6ImlkIiwiZW1haWwiOiJhQGIuY29tIiwiaWF0IjoxMDAwLCJleHAiOjk5OTk5OTk5OTl9.";
        assert!(keys().verify(token, secs(1000)).is_none());
    }

    #[test]
    fn current_user_comes_from_the_session_cookie() {
        let token = keys().issue("id1", "a@b.com", secs(1000));
        let user = keys().current_user(&with_cookie(&token), secs(1001)).unwrap();
        assert_eq!(user, CurrentUser { id: "id1".into(), email: "a@b.com".into(), iat: 1000 });
        assert!(keys().current_user(&Request::new("GET", "/"), secs(1001)).is_none());
        assert_eq!(keys().require_user(&with_cookie("garbage"), secs(1001)).unwrap_err().status, 401);
    }

    #[test]
    fn cookies_are_http_only_and_secure_behind_https() {
        let plain = Request::new("POST", "/");
        let https = Request::new("POST", "/").with_header("X-Forwarded-Proto", "https");
        assert_eq!(keys().session_cookie("t", &plain), "session=t; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
        assert!(keys().session_cookie("t", &https).ends_with("; Secure"));
        assert!(clear_cookie(&plain).starts_with("session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly"));
        assert!(clear_cookie(&https).ends_with("; secure"));
        assert!(!clear_cookie(&plain).contains("Secure"));
    }

    #[test]
    fn macs_depend_on_key_purpose_and_data() {
        let other = SessionKeys::new("another-key-that-is-long-enough-for-hs256", 3600).unwrap();
        let mac = keys().mac("p", b"data");
        assert_eq!(mac.len(), 64);
        assert_eq!(mac, keys().mac("p", b"data"));
        assert_ne!(mac, keys().mac("q", b"data"));
        assert_ne!(mac, keys().mac("p", b"datA"));
        assert_ne!(mac, other.mac("p", b"data"));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SessionKeys::new("short", 60).is_err());
    }
}
