//! `http-gateway`: the lattice's front door.
//!
//! It listens on one address (127.0.0.1:8000 by default) and forwards each request to
//! the component whose link `path` is the longest prefix of the request path, over
//! wRPC `wasi:http/incoming-handler`. The official http-server provider's "path" mode
//! matches paths exactly, which cannot route `/api/tickets/<id>`; prefix routing can.
//!
//! Provider config: `address`, `timeout_ms`, `max_body_bytes`, `trusted_proxies` (see `config.rs`).
//! Link (source) config: `path`, e.g. `/api/users`.
//!
//! `provider.rs` turns links into routes, `server.rs` answers HTTP; both work on the
//! table of `target.rs` (`routes.rs` is its lookup logic).

mod client_addr;
mod config;
mod provider;
mod routes;
mod server;
mod target;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketing_provider_support::logging::init();
    provider::run().await
}
