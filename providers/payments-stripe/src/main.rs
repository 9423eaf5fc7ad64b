#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ticketing_provider_support::logging::init();
    payments_stripe::provider::run().await
}
