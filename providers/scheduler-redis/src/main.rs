// One thread, as every provider of ours: see `ticketing_provider_support`, "Threads".
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _flush = ticketing_provider_support::logging::init("scheduler-redis")?;
    scheduler_redis::provider::run().await
}
