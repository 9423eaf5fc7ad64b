//! The wasm side every component shares.
//!
//! Bindings for the `ticketing:services/platform` world (wasi:http types, keyvalue,
//! config, secrets, logging, messaging) are generated here once. A component generates only its own world with
//! [`component_bindings!`], which maps those interfaces back to this crate, so the
//! adapter code below works for every component.

pub mod events;
pub mod http;
pub mod http_client;
pub mod kv;
pub mod log;

/// Re-exported so that components' generated code needs no direct dependency on it.
pub use wit_bindgen;

#[allow(clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "platform",
        generate_all,
        pub_export_macro: true,
    });
}

pub use bindings::{wasi, wasmcloud};

/// Reads one value of the component's configuration (`config:` in wadm.yaml).
pub fn config(key: &str) -> Option<String> {
    bindings::wasi::config::store::get(key).ok().flatten()
}

/// Reads one secret the deployment maps to this component (`secrets:` in wadm.yaml,
/// fetched by the host from the lattice's secrets backend when the component starts),
/// as text. `None` when the component has no such secret.
pub fn secret(key: &str) -> Option<String> {
    use bindings::wasmcloud::secrets::{reveal, store};
    let secret = store::get(key).ok()?;
    match reveal::reveal(&secret) {
        store::SecretValue::String(text) => Some(text),
        store::SecretValue::Bytes(bytes) => String::from_utf8(bytes).ok(),
    }
}

/// Generates a component's world, reusing this crate's bindings for the platform
/// interfaces. `component_bindings!("auth")` generates world `ticketing:services/auth`.
#[macro_export]
macro_rules! component_bindings {
    ($world:literal) => {
        #[allow(clippy::all, missing_docs)]
        mod bindings {
            ::ticketing_guest::wit_bindgen::generate!({
                path: "../../wit",
                world: $world,
                runtime_path: "::ticketing_guest::wit_bindgen::rt",
                with: {
                    "wasi:http/types@0.2.2": ::ticketing_guest::wasi::http::types,
                    "wasi:http/outgoing-handler@0.2.2": ::ticketing_guest::wasi::http::outgoing_handler,
                    "wasi:io/error@0.2.2": ::ticketing_guest::wasi::io::error,
                    "wasi:io/poll@0.2.2": ::ticketing_guest::wasi::io::poll,
                    "wasi:io/streams@0.2.2": ::ticketing_guest::wasi::io::streams,
                    "wasi:clocks/monotonic-clock@0.2.2": ::ticketing_guest::wasi::clocks::monotonic_clock,
                    "wasi:config/store@0.2.0-draft": ::ticketing_guest::wasi::config::store,
                    "wasmcloud:secrets/store@0.1.0-draft": ::ticketing_guest::wasmcloud::secrets::store,
                    "wasmcloud:secrets/reveal@0.1.0-draft": ::ticketing_guest::wasmcloud::secrets::reveal,
                    "wasi:keyvalue/store@0.2.0-draft": ::ticketing_guest::wasi::keyvalue::store,
                    "wasi:keyvalue/atomics@0.2.0-draft": ::ticketing_guest::wasi::keyvalue::atomics,
                    "wasi:keyvalue/batch@0.2.0-draft": ::ticketing_guest::wasi::keyvalue::batch,
                    "wasi:logging/logging@0.1.0-draft": ::ticketing_guest::wasi::logging::logging,
                    "wasmcloud:messaging/types@0.2.0": ::ticketing_guest::wasmcloud::messaging::types,
                    "wasmcloud:messaging/consumer@0.2.0": ::ticketing_guest::wasmcloud::messaging::consumer,
                },
                generate_all,
            });
        }
    };
}

/// The session keys from secret `jwt_key` (and optional config `session_ttl_seconds`);
/// `None` (logged) when the key is missing or too short.
pub fn session_keys() -> Option<ticketing_common::session::SessionKeys> {
    use ticketing_common::session::{SessionKeys, DEFAULT_TTL_SECONDS};
    let ttl = config("session_ttl_seconds").and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_TTL_SECONDS);
    let key = secret("jwt_key").unwrap_or_default();
    match SessionKeys::new(&key, ttl) {
        Ok(keys) => Some(keys),
        Err(e) => {
            log::error("session", &format!("no usable jwt_key secret: {e}"));
            None
        }
    }
}
