//! `http-gateway`: the lattice's front door.
//!
//! It listens on one address (127.0.0.1:8000 by default) and forwards each request to
//! the component whose link `path` is the longest prefix of the request path, over
//! wRPC `wasi:http/incoming-handler`. The official http-server provider's "path" mode
//! matches paths exactly, which cannot route `/api/tickets/<id>`; prefix routing can.
//!
//! Provider config: `address`, `timeout_ms`, `max_body_bytes`, `trusted_proxies` (see `config.rs`).
//! Link (source) config: `path`, e.g. `/api/users`.

mod client_addr;
mod config;
mod provider;
mod routes;
mod server;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, which the host copies into its own log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::io::stderr).init();
    provider::run().await
}
