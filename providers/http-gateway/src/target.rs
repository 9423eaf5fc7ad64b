//! What a route leads to, shared by the two sides of the gateway: the link side
//! (`provider.rs`) fills the table as links come and go, the HTTP side (`server.rs`) reads
//! it for every request. Defined here, apart from both, so neither depends on the other's
//! module for them.

use std::sync::Arc;

use tokio::sync::RwLock;
use wasmcloud_provider_sdk::provider::WrpcClient;

use crate::routes::RouteTable;

/// A routed component and the wRPC client that reaches its instances.
#[derive(Clone)]
pub struct Target {
    pub component: Arc<str>,
    pub client: WrpcClient,
}

/// The route table as both sides hold it.
pub type SharedRoutes = Arc<RwLock<RouteTable<Target>>>;
