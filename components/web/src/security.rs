//! Browser hardening, applied to every response in one place ([`crate::pages::handle`]):
//! the security headers, and the refusal of form posts sent from another site's page.
//!
//! The session cookie is `SameSite=Lax`, which already keeps it off cross-site posts; the
//! origin check is the second lock, for browsers or setups where that is not enough.

use ticketing_common::http::{Request, Response};

/// Scripts only from our origin and Stripe.js; Stripe's card field lives in its frames
/// and talks to its API (Stripe's documented CSP list for Stripe.js). Nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' https://js.stripe.com https://*.js.stripe.com; \
frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; \
connect-src 'self' https://api.stripe.com; \
style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Sent on every response of the web component.
pub const HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    // For browsers that predate `frame-ancestors`.
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    // Features the pages never use; only names every current browser knows, so none warns.
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), usb=()"),
];

/// The response with the security headers added (one a handler set itself is kept).
pub fn with_security_headers(mut response: Response) -> Response {
    for (name, value) in HEADERS {
        if response.header(name).is_none() {
            response.headers.push((name.to_string(), value.to_string()));
        }
    }
    response
}

/// Whether `request` changes state and was sent by a page of another origin, so it must
/// be refused.
///
/// Browsers since about 2020 send `Sec-Fetch-Site`, which is the whole answer: only
/// `same-origin` (our own pages) and `none` (the user's own action, e.g. a bookmark) pass;
/// `same-site` is a neighbouring origin (another subdomain), not ours. Older browsers send
/// only `Origin`, which must then be our own origin: the scheme (`X-Forwarded-Proto` from
/// a TLS front, else http) and the `Host`. A request with neither header is not from a
/// browser that could be tricked into sending it (curl, scripts, pre-2020 browsers), and
/// passes.
pub fn is_cross_origin_write(request: &Request) -> bool {
    if matches!(request.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
        return false;
    }
    if let Some(site) = request.header("sec-fetch-site") {
        return !matches!(site.trim().to_ascii_lowercase().as_str(), "same-origin" | "none");
    }
    match request.header("origin") {
        None => false,
        Some(origin) => own_origin(request).is_none_or(|own| normalised(origin) != normalised(&own)),
    }
}

/// `scheme://host` of this request as the browser addressed it, if it says its host.
fn own_origin(request: &Request) -> Option<String> {
    let host = request.header("host").map(str::trim).filter(|h| !h.is_empty())?;
    // A chain of proxies lists one value each; the first is the browser's.
    let proto = request.header("x-forwarded-proto").and_then(|p| p.split(',').next()).map(str::trim);
    let scheme = if proto.is_some_and(|p| p.eq_ignore_ascii_case("https")) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// Lower case, without a default port: `HTTP://Shop:80` and `http://shop` are one origin.
fn normalised(origin: &str) -> String {
    let origin = origin.trim().to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme) {
            if let Some(without) = origin.strip_suffix(port) {
                return without.to_string();
            }
        }
    }
    origin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        headers.iter().fold(Request::new("POST", "/auth/signin"), |r, (k, v)| r.with_header(k, v))
    }

    #[test]
    fn sec_fetch_site_decides_when_present() {
        assert!(!is_cross_origin_write(&post(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_origin_write(&post(&[("sec-fetch-site", "none")])));
        assert!(is_cross_origin_write(&post(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_origin_write(&post(&[("sec-fetch-site", "same-site")])));
        assert!(is_cross_origin_write(&post(&[("sec-fetch-site", "something-new")])), "unknown values are refused");
        // It wins over an Origin that a proxy's rewritten Host would not match.
        assert!(!is_cross_origin_write(&post(&[("sec-fetch-site", "same-origin"), ("origin", "https://shop.example"), ("host", "127.0.0.1:8000")])));
        assert!(is_cross_origin_write(&post(&[("sec-fetch-site", "cross-site"), ("origin", "http://shop"), ("host", "shop")])));
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_ours() {
        let from = |origin: &str, host: &str| post(&[("origin", origin), ("host", host)]);
        assert!(!is_cross_origin_write(&from("http://127.0.0.1:8000", "127.0.0.1:8000")));
        assert!(!is_cross_origin_write(&from("HTTP://Shop.Example", "shop.example:80")), "case and default port do not matter");
        assert!(is_cross_origin_write(&from("http://evil.example", "127.0.0.1:8000")));
        assert!(is_cross_origin_write(&from("http://127.0.0.1:9000", "127.0.0.1:8000")), "another port is another origin");
        assert!(is_cross_origin_write(&from("http://127.0.0.1:8000.evil.example", "127.0.0.1:8000")));
        assert!(is_cross_origin_write(&from("null", "127.0.0.1:8000")), "an opaque origin (sandboxed frame) is not ours");
        assert!(is_cross_origin_write(&post(&[("origin", "http://shop")])), "no Host to compare with");
    }

    #[test]
    fn the_scheme_comes_from_x_forwarded_proto() {
        let behind_tls = |origin: &str| post(&[("origin", origin), ("host", "shop.example"), ("x-forwarded-proto", "https")]);
        assert!(!is_cross_origin_write(&behind_tls("https://shop.example")));
        assert!(!is_cross_origin_write(&behind_tls("https://shop.example:443")));
        assert!(is_cross_origin_write(&behind_tls("http://shop.example")), "a plain-http page cannot post to the https site");
        let chained = post(&[("origin", "https://shop.example"), ("host", "shop.example"), ("x-forwarded-proto", "HTTPS, http")]);
        assert!(!is_cross_origin_write(&chained));
        assert!(is_cross_origin_write(&post(&[("origin", "https://shop.example"), ("host", "shop.example")])), "plain http by default");
    }

    #[test]
    fn requests_without_either_header_and_reads_pass() {
        assert!(!is_cross_origin_write(&post(&[])), "curl, scripts, pre-2020 browsers");
        assert!(!is_cross_origin_write(&post(&[("host", "shop")])));
        for method in ["GET", "HEAD", "OPTIONS"] {
            let read = Request::new(method, "/").with_header("sec-fetch-site", "cross-site").with_header("origin", "http://evil.example");
            assert!(!is_cross_origin_write(&read), "{method}: links from other sites must work");
        }
        for method in ["PUT", "DELETE", "PATCH"] {
            assert!(is_cross_origin_write(&Request::new(method, "/").with_header("sec-fetch-site", "cross-site")), "{method}");
        }
    }

    #[test]
    fn every_response_gets_the_headers_once() {
        let response = with_security_headers(Response::empty(303).with_header("location", "/"));
        for (name, value) in HEADERS {
            assert_eq!(response.header(name), Some(value), "{name}");
        }
        let own = with_security_headers(Response::empty(200).with_header("referrer-policy", "no-referrer"));
        assert_eq!(own.headers.iter().filter(|(k, _)| k == "referrer-policy").count(), 1);
        assert_eq!(own.header("referrer-policy"), Some("no-referrer"));
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_only_stripe_from_outside() {
        let directive = |name: &str| {
            CONTENT_SECURITY_POLICY.split(';').map(str::trim).find_map(|d| d.strip_prefix(name).map(str::trim)).unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(directive("script-src "), "'self' https://js.stripe.com https://*.js.stripe.com");
        assert_eq!(directive("style-src "), "'self'");
        for (name, value) in [("default-src ", "'self'"), ("object-src ", "'none'"), ("base-uri ", "'none'"), ("form-action ", "'self'"), ("frame-ancestors ", "'none'")] {
            assert_eq!(directive(name), value, "{name}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"), "no 'unsafe-inline' or 'unsafe-eval'");
        assert!(!CONTENT_SECURITY_POLICY.contains('\n') && !CONTENT_SECURITY_POLICY.contains("  "));
    }
}
