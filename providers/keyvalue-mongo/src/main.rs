#[tokio::main]
async fn main() -> anyhow::Result<()> {
    wasmcloud_provider_sdk::initialize_observability!("keyvalue-mongo", None::<std::ffi::OsString>);
    keyvalue_mongo::provider::run().await
}
