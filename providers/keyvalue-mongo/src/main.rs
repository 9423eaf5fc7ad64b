#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketing_provider_support::logging::init();
    keyvalue_mongo::provider::run().await
}
