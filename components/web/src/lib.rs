//! web: the client, rendered on the server (`/`).
//!
//! - pages and their routes: [`pages`]; templates in `templates/`, CSS and the small
//!   script in `static/`
//! - the security headers and the cross-site form post check: [`security`]
//! - the API the pages call: [`api`] (the services' own HTTP routes, through the
//!   gateway, with the browser's session cookie)
//!
//! Config: `api_base` (the gateway, `http://127.0.0.1:8000`), `stripe_publishable_key`
//! (optional; without it the order page offers stripe-mock's test cards). Secret
//! `jwt_key` (optional): the header reads the session cookie itself instead of calling
//! `currentuser` on every page.

pub mod api;
pub mod form;
pub mod pages;
pub mod security;
pub mod views;

/// The wasm adapter: the browser's request in, API calls over `wasi:http` out.
#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("web");

    use bindings::exports::wasi::http::incoming_handler::Guest as HttpHandler;
    use serde_json::Value;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use ticketing_guest::{config, http_client, secret, session_keys};

    use super::api::{Api, ApiReply};
    use super::pages::{handle, Site};

    const API_TIMEOUT_MS: u64 = 15_000;

    /// The API on behalf of one browser request: its session cookie, scheme and address
    /// go along (the address so that auth's rate limits count the browser, not this
    /// component; the gateway believes it from a front listed in its `trusted_proxies`).
    struct GatewayApi {
        base: String,
        cookie: Option<String>,
        forwarded_proto: Option<String>,
        forwarded_for: Option<String>,
    }

    impl Api for GatewayApi {
        fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<ApiReply, String> {
            let mut headers = vec![("accept", "application/json")];
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            if let Some(cookie) = &self.cookie {
                headers.push(("cookie", cookie));
            }
            if let Some(proto) = &self.forwarded_proto {
                headers.push(("x-forwarded-proto", proto));
            }
            if let Some(address) = &self.forwarded_for {
                headers.push(("x-forwarded-for", address));
            }
            let bytes = body.map(|b| b.to_string().into_bytes());
            let reply = http_client::send(method, &self.base, path, &headers, bytes.as_deref(), API_TIMEOUT_MS)?;
            let next_cursor = reply.header_values(ticketing_common::paging::NEXT_CURSOR_HEADER).next().map(str::to_string);
            Ok(ApiReply {
                status: reply.status,
                set_cookies: reply.header_values("set-cookie").map(str::to_string).collect(),
                body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
                next_cursor,
            })
        }
    }

    struct Web;

    impl HttpHandler for Web {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let stripe_key = config("stripe_publishable_key").unwrap_or_default();
            // The origin check needs the host; wasi:http may carry it as the authority alone.
            let authority = request.authority();
            ticketing_guest::http::serve(request, out, |mut request| {
                if request.header("host").is_none() {
                    request.headers.extend(authority.map(|authority| ("host".to_string(), authority)));
                }
                let api = GatewayApi {
                    base: config("api_base").unwrap_or_else(|| "http://127.0.0.1:8000".into()),
                    cookie: request.header("cookie").map(str::to_string),
                    forwarded_proto: request.header("x-forwarded-proto").map(str::to_string),
                    forwarded_for: request.header("x-forwarded-for").map(str::to_string),
                };
                // Without the secret the header asks auth, as it must (no error to log).
                let sessions = secret("jwt_key").and_then(|_| session_keys());
                let site = Site { api: &api, sessions: sessions.as_ref(), stripe_key: stripe_key.trim(), now: ticketing_common::time::Timestamp::now() };
                handle(&site, &request)
            });
        }
    }

    bindings::export!(Web with_types_in bindings);
}

#[cfg(test)]
mod tests;
