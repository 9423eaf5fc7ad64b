use std::future::Future;

use anyhow::{Context as _, Result};
use wasmcloud_provider_sdk::provider::WrpcClient;
use wasmcloud_provider_sdk::{get_connection, run_provider, Provider};

/// Starts `provider` as `name` with its host (its `init` runs, links start arriving) and
/// returns what serving its WIT exports needs: the wRPC client on which components reach
/// this provider, and the future that resolves when the host tells it to shut down. Pass
/// both, with the provider and its bindings' `serve`, to
/// [`serve_provider_exports`](wasmcloud_provider_sdk::serve_provider_exports).
///
/// (The serving itself stays in each provider: its `serve` borrows the client, which a
/// shared function could not hand out without leaking it.)
pub async fn start<P: Provider + Clone>(provider: &P, name: &str) -> Result<(WrpcClient, impl Future<Output = ()>)> {
    let shutdown = run_provider(provider.clone(), name).await.context("failed to start the provider")?;
    let connection = get_connection();
    let wrpc = connection.get_wrpc_client(connection.provider_key()).await?;
    Ok((wrpc, shutdown))
}
