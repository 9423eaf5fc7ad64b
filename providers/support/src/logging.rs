//! The log (and trace) set-up of a provider process.

use anyhow::{Context as _, Result};
use tracing_subscriber::util::SubscriberInitExt as _;
use wasmcloud_provider_sdk::provider::load_host_data;
use wasmcloud_provider_sdk::wasmcloud_tracing::{configure_observability, FlushGuard};

/// Sends `tracing` output to stderr, which the wasmCloud host copies into its own log
/// (so no colour codes), at `info` unless `RUST_LOG` says otherwise. When the host runs
/// with OpenTelemetry on (its host data says so), spans also go to the OTLP collector as
/// service `name`, and calls carry their trace on. Call it first in `main`, once, and
/// keep the guard until the end: dropping it flushes what is left to export.
pub fn init(name: &str) -> Result<Option<FlushGuard>> {
    let host = load_host_data().context("failed to read the host data")?;
    let otel = &host.otel_config;
    if otel.traces_enabled() || otel.metrics_enabled() || otel.logs_enabled() {
        let (dispatch, guard) =
            configure_observability(name, otel, host.structured_logging, None::<&str>, host.log_level.as_ref(), Some(&otel.trace_level))
                .context("failed to configure OpenTelemetry")?;
        dispatch.try_init().context("failed to start logging")?;
        return Ok(Some(guard));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::io::stderr).init();
    Ok(None)
}
