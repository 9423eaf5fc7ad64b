#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _flush = ticketing_provider_support::logging::init("keyvalue-mongo")?;
    keyvalue_mongo::provider::run().await
}
