//! The log set-up of a provider process.

/// Sends `tracing` output to stderr, which the wasmCloud host copies into its own log
/// (so no colour codes), at `info` unless `RUST_LOG` says otherwise. Call it first in
/// `main`, once.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::io::stderr).init();
}
