//! auth component: users and sessions (`/api/users/*`).
//!
//! - HTTP routes: [`routes`]
//! - storage (bucket `users`, keyed by e-mail): [`users`]
//! - password hashing: [`password`]
//! - rate limits on sign-in and sign-up: [`limits`]
//!
//! Secret (wasmcloud:secrets): `jwt_key` (required, shared by all services). Config
//! (wasi:config): `session_ttl_seconds` and the limits (see [`limits::Limits::from_config`]).

pub mod limits;
pub mod password;
pub mod routes;
pub mod users;

#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("auth");

    use bindings::exports::wasi::http::incoming_handler::Guest;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use ticketing_guest::{config, kv::LatticeStore, session_keys};

    use super::limits::Limits;
    use super::routes::{handle, Ctx};

    struct Auth;

    impl Guest for Auth {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let keys = session_keys();
            let ctx = Ctx {
                store: &LatticeStore,
                keys: keys.as_ref(),
                limits: Limits::from_config(config),
                now: ticketing_common::time::Timestamp::now(),
            };
            ticketing_guest::http::serve(request, out, |request| handle(&ctx, &request));
        }
    }

    bindings::export!(Auth with_types_in bindings);
}
