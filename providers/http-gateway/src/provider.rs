//! The wasmCloud side: links from this provider to components register routes.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use ticketing_provider_support::settings::lookup;
use ticketing_provider_support::LinkKey;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use wasmcloud_provider_sdk::{get_connection, load_host_data, run_provider, LinkConfig, LinkDeleteInfo, Provider};

use crate::config::Settings;
use crate::server;
use crate::target::{SharedRoutes, Target};

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
        self.routes.write().await.insert(&path, LinkKey::as_source(&link), target).map_err(|e| {
            warn!(error = %e, "route rejected");
            anyhow::anyhow!(e)
        })?;
        info!(%path, component = link.target_id, "route added");
        Ok(())
    }

    async fn delete_link_as_source(&self, info: impl LinkDeleteInfo) -> Result<()> {
        self.routes.write().await.remove_link(&LinkKey::deleted_as_source(&info));
        info!(component = info.get_target_id(), "route removed");
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.server.abort();
        Ok(())
    }
}
