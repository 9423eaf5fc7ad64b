#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _flush = ticketing_provider_support::logging::init("messaging-jetstream")?;
    messaging_jetstream::provider::run().await
}
