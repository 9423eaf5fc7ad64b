#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _flush = ticketing_provider_support::logging::init("payments-stripe")?;
    payments_stripe::provider::run().await
}
