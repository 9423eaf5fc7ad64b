#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, which the host copies into its own log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::io::stderr).init();
    payments_stripe::provider::run().await
}
