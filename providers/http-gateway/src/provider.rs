//! The wasmCloud side: links from this provider to components register routes.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use wasmcloud_provider_sdk::provider::WrpcClient;
use wasmcloud_provider_sdk::{get_connection, load_host_data, run_provider, LinkConfig, LinkDeleteInfo, Provider};

use ticketing_common::settings::lookup;

use crate::config::Settings;
use crate::routes::RouteTable;
use crate::server;

/// A routed component and the wRPC client that reaches its instances.
#[derive(Clone)]
pub struct Target {
    pub component: Arc<str>,
    pub client: WrpcClient,
}

pub type SharedRoutes = Arc<RwLock<RouteTable<Target>>>;

struct Gateway {
    settings: Settings,
    routes: SharedRoutes,
    server: JoinHandle<()>,
}

pub async fn run() -> Result<()> {
    let host_data = load_host_data().context("failed to load host data")?;
    let settings = Settings::from_config(&host_data.config).context("invalid http-gateway config")?;
    let routes = SharedRoutes::default();
    let server = server::spawn(settings.clone(), Arc::clone(&routes)).await?;
    info!(address = %settings.address, "http-gateway listening");
    let running = run_provider(Gateway { settings, routes, server }, "http-gateway")
        .await
        .context("failed to start the provider")?;
    running.await;
    Ok(())
}

impl Provider for Gateway {
    async fn receive_link_config_as_source(&self, link: LinkConfig<'_>) -> Result<()> {
        let path = lookup(link.config, "path")
            .cloned()
            .with_context(|| format!("link to `{}` has no `path` in its config", link.target_id))?;
        let client = get_connection()
            .get_wrpc_client_custom(link.target_id, Some(self.settings.timeout))
            .await
            .context("failed to build a wRPC client")?;
        let target = Target { component: Arc::from(link.target_id), client };
        let key = (link.target_id.to_string(), link.link_name.to_string());
        self.routes.write().await.insert(&path, key, target).map_err(|e| {
            warn!(error = %e, "route rejected");
            anyhow::anyhow!(e)
        })?;
        info!(%path, component = link.target_id, "route added");
        Ok(())
    }

    async fn delete_link_as_source(&self, info: impl LinkDeleteInfo) -> Result<()> {
        let key = (info.get_target_id().to_string(), info.get_link_name().to_string());
        self.routes.write().await.remove_link(&key);
        info!(component = info.get_target_id(), "route removed");
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.server.abort();
        Ok(())
    }
}
