//! `wadm`: a thin launcher for wadm 0.21.1.
//!
//! The `wadm` crate's `cli` feature already derives the whole command line (flags and
//! `WADM_*` variables) for `WadmConfig`; this binary parses it, starts wadm and exits
//! when any of wadm's tasks ends or a stop signal arrives.

use anyhow::{Context as _, Result};
use clap::Parser as _;
use wadm::config::WadmConfig;

#[tokio::main]
async fn main() -> Result<()> {
    let config = WadmConfig::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wadm=info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    if config.structured_logging {
        fmt.json().init();
    } else {
        fmt.init();
    }

    let mut tasks = wadm::start_wadm(config).await.context("failed to start wadm")?;
    tracing::info!("wadm started");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        Some(ended) = tasks.join_next() => {
            ended.context("a wadm task panicked")?.context("a wadm task failed")?;
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
        _ = term.recv() => tracing::info!("terminated, stopping"),
    }
    tasks.abort_all();
    Ok(())
}
