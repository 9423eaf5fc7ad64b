#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _flush = ticketing_provider_support::logging::init("scheduler-redis")?;
    scheduler_redis::provider::run().await
}
