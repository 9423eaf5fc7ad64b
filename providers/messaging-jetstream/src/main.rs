#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketing_provider_support::logging::init();
    messaging_jetstream::provider::run().await
}
