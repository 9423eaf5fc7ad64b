#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketing_provider_support::logging::init();
    scheduler_redis::provider::run().await
}
