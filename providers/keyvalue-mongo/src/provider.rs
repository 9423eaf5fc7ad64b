//! The wRPC side: one [`MongoStore`] (one connection pool) per link from a component;
//! each call is served from the store of the link it came through.
//!
//! At start (`init`, from the provider's named config) it connects to NATS for the outbox
//! relay. It serves only while it holds the lease ([`run`]), and only then sweeps every
//! linked database for events not yet published. NATS being away does not stop
//! keyvalue from being served: the client keeps connecting in the background, and the
//! events wait in the database meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use futures::FutureExt as _;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use ticketing_provider_support::settings::{lattice_nats_url, redacted};
use ticketing_provider_support::trace::call_span;
use ticketing_provider_support::LinkKey;
use tracing::{info, warn, Instrument as _};
use wasmcloud_provider_sdk::{get_connection, serve_provider_exports, Context, LinkConfig, LinkDeleteInfo, Provider, ProviderInitConfig};

use crate::config::{LinkSettings, ProviderSettings, DEFAULT_LEASE_TTL_MS};
use crate::key_index;
use crate::lease::{Lease, LeaseTimes};
use crate::mongo::MongoStore;
use crate::outbox::{self, Relay};
use crate::write_gate;

mod bindings {
    wit_bindgen_wrpc::generate!({
        path: "../../wit",
        world: "keyvalue-mongo-provider",
        generate_all,
    });
}

use bindings::exports::wrpc::keyvalue::{atomics, batch, store};
use store::Error;

#[derive(Clone, Default)]
pub struct KeyvalueMongo {
    links: Arc<RwLock<HashMap<LinkKey, MongoStore>>>,
    /// Set by `init`, before any link arrives.
    relay: Arc<OnceLock<Relay>>,
    settings: Arc<OnceLock<ProviderSettings>>,
    sweep: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

/// Starts with the host, then serves whenever this instance holds the lease (see
/// [`crate::lease`]): standing by until it gets it, serving until it loses it or the
/// host stops the provider.
pub async fn run() -> Result<()> {
    let provider = KeyvalueMongo::default();
    let (wrpc, shutdown) = ticketing_provider_support::start(&provider, "keyvalue-mongo").await?;
    let shutdown = shutdown.shared();
    let connection = get_connection();
    let ttl = provider.settings.get().map_or(Duration::from_millis(DEFAULT_LEASE_TTL_MS), |s| s.lease_ttl);
    let lease = Lease::new(
        (*connection.nats).clone(),
        &format!("{}.{}", connection.lattice, connection.provider_key()),
        &format!("{}/{}", connection.host_id, std::process::id()),
        LeaseTimes::with_ttl(ttl),
    )
    .await?;
    loop {
        info!("standing by until this instance holds the lease");
        let mut held = tokio::select! {
            held = lease.acquire() => held,
            () = shutdown.clone() => return Ok(()),
        };
        info!("holding the lease: serving");
        // Another instance served meanwhile: what this process knew of the keys is stale.
        key_index::forget_all();
        provider.start_sweep();
        let mut lost = None;
        let stop = async {
            tokio::select! {
                reason = lease.keep(&mut held) => lost = Some(reason),
                () = shutdown.clone() => {}
            }
        };
        let served = serve_provider_exports(&wrpc, provider.clone(), stop, bindings::serve).await;
        provider.stop_sweep();
        match lost {
            Some(reason) => warn!(reason, "stopped serving: lost the lease"),
            None => {
                lease.release(held).await;
                return served;
            }
        }
        served?;
    }
}

impl KeyvalueMongo {
    /// Starts sweeping every linked database for events not yet published (only the
    /// instance that serves sweeps: the relay's writes rely on its locks).
    fn start_sweep(&self) {
        let (Some(relay), Some(settings)) = (self.relay.get(), self.settings.get()) else { return };
        let links = Arc::clone(&self.links);
        let sweep = tokio::spawn(outbox::sweep_forever(relay.clone(), settings.sweep_interval, move || {
            let links = Arc::clone(&links);
            async move { linked_databases(&links).await }
        }));
        if let Some(old) = self.sweep.lock().expect("never poisoned").replace(sweep) {
            old.abort();
        }
    }

    /// Stopping mid-sweep is safe: whatever it did not finish, the scan of whichever
    /// instance serves next (this one included) finds in the database.
    fn stop_sweep(&self) {
        if let Some(sweep) = self.sweep.lock().expect("never poisoned").take() {
            sweep.abort();
        }
    }

    async fn store_for(&self, cx: &Option<Context>) -> Result<MongoStore, Error> {
        let Some(cx) = cx else {
            return Err(Error::Other("call without an invocation context".into()));
        };
        let key = LinkKey::of_call(cx);
        self.links.read().await.get(&key).cloned().ok_or_else(|| Error::Other(format!("no keyvalue link from {key}")))
    }
}

/// Turns a storage failure into the interface's error, logging the detail.
fn fail(op: &str, bucket: &str, e: anyhow::Error) -> Error {
    warn!(op, bucket, error = format!("{e:#}"), "keyvalue operation failed");
    Error::Other(format!("{op} failed: {e:#}"))
}

/// The databases linked now, each once (several links may share one).
async fn linked_databases(links: &RwLock<HashMap<LinkKey, MongoStore>>) -> Vec<mongodb::Database> {
    let links = links.read().await;
    let mut seen: Vec<&str> = Vec::new();
    let mut databases = Vec::new();
    for store in links.values() {
        if !seen.contains(&store.location()) {
            seen.push(store.location());
            databases.push(store.database().clone());
        }
    }
    databases
}

impl Provider for KeyvalueMongo {
    async fn init(&self, init: impl ProviderInitConfig) -> Result<()> {
        let settings = ProviderSettings::from_config(init.get_config(), init.get_secrets(), &lattice_nats_url())?;
        let nats = async_nats::ConnectOptions::new()
            .name("keyvalue-mongo outbox relay")
            .retry_on_initial_connect()
            .connect(&settings.nats_url)
            .await
            .with_context(|| format!("invalid NATS URL {}", redacted(&settings.nats_url)))?;
        let _ = self.relay.set(Relay::new(nats, &settings.event_prefix));
        info!(nats = redacted(&settings.nats_url), prefix = settings.event_prefix, sweep_ms = settings.sweep_interval.as_millis() as u64,
              lease_ttl_ms = settings.lease_ttl.as_millis() as u64, "outbox relay ready");
        let _ = self.settings.set(settings);
        Ok(())
    }

    async fn receive_link_config_as_target(&self, link: LinkConfig<'_>) -> Result<()> {
        let settings = LinkSettings::from_link(link.config, link.secrets)?;
        let mut store = MongoStore::connect(&settings.uri, &settings.database).await?;
        write_gate::limit(&settings.database, settings.writes_at_once);
        if let Some(relay) = self.relay.get() {
            store = store.with_relay(relay.clone());
        }
        info!(component = link.source_id, link = link.link_name, uri = redacted(&settings.uri),
              database = settings.database, writes_at_once = ?settings.writes_at_once, "keyvalue link ready");
        let old = self.links.write().await.insert(LinkKey::as_target(&link), store);
        if let Some(old) = old {
            old.shutdown().await;
        }
        Ok(())
    }

    async fn delete_link_as_target(&self, info: impl LinkDeleteInfo) -> Result<()> {
        let key = LinkKey::deleted_as_target(&info);
        if let Some(store) = self.links.write().await.remove(&key) {
            store.shutdown().await;
            info!(component = key.component, link = key.name, "keyvalue link removed");
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        self.stop_sweep();
        for (_, store) in self.links.write().await.drain() {
            store.shutdown().await;
        }
        Ok(())
    }
}

impl store::Handler<Option<Context>> for KeyvalueMongo {
    async fn get(&self, cx: Option<Context>, bucket: String, key: String) -> Result<Result<Option<Bytes>, Error>> {
        let span = call_span(&cx, "keyvalue get");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.get(&bucket, &key).await.map(|v| v.map(Bytes::from)).map_err(|e| fail("get", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn set(&self, cx: Option<Context>, bucket: String, key: String, value: Bytes) -> Result<Result<(), Error>> {
        let span = call_span(&cx, "keyvalue set");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.set(&bucket, &key, &value).await.map_err(|e| fail("set", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn delete(&self, cx: Option<Context>, bucket: String, key: String) -> Result<Result<(), Error>> {
        let span = call_span(&cx, "keyvalue delete");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.delete(&bucket, &key).await.map_err(|e| fail("delete", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn exists(&self, cx: Option<Context>, bucket: String, key: String) -> Result<Result<bool, Error>> {
        let span = call_span(&cx, "keyvalue exists");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.exists(&bucket, &key).await.map_err(|e| fail("exists", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn list_keys(
        &self,
        cx: Option<Context>,
        bucket: String,
        cursor: Option<u64>,
    ) -> Result<Result<store::KeyResponse, Error>> {
        let span = call_span(&cx, "keyvalue list-keys");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store
                .list_keys(&bucket, cursor)
                .await
                .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
                .map_err(|e| fail("list-keys", &bucket, e)))
        }
        .instrument(span)
        .await
    }
}

impl atomics::Handler<Option<Context>> for KeyvalueMongo {
    async fn increment(&self, cx: Option<Context>, bucket: String, key: String, delta: u64) -> Result<Result<u64, Error>> {
        let span = call_span(&cx, "keyvalue increment");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.increment(&bucket, &key, delta).await.map_err(|e| fail("increment", &bucket, e)))
        }
        .instrument(span)
        .await
    }
}

impl batch::Handler<Option<Context>> for KeyvalueMongo {
    async fn get_many(
        &self,
        cx: Option<Context>,
        bucket: String,
        keys: Vec<String>,
    ) -> Result<Result<Vec<Option<(String, Bytes)>>, Error>> {
        let span = call_span(&cx, "keyvalue get-many");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store
                .get_many(&bucket, &keys)
                .await
                .map(|found| found.into_iter().map(|kv| kv.map(|(k, v)| (k, Bytes::from(v)))).collect())
                .map_err(|e| fail("get-many", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn set_many(
        &self,
        cx: Option<Context>,
        bucket: String,
        key_values: Vec<(String, Bytes)>,
    ) -> Result<Result<(), Error>> {
        let span = call_span(&cx, "keyvalue set-many");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            let entries: Vec<(String, Vec<u8>)> = key_values.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
            Ok(store.set_many(&bucket, &entries).await.map_err(|e| fail("set-many", &bucket, e)))
        }
        .instrument(span)
        .await
    }

    async fn delete_many(&self, cx: Option<Context>, bucket: String, keys: Vec<String>) -> Result<Result<(), Error>> {
        let span = call_span(&cx, "keyvalue delete-many");
        async move {
            let store = match self.store_for(&cx).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.delete_many(&bucket, &keys).await.map_err(|e| fail("delete-many", &bucket, e)))
        }
        .instrument(span)
        .await
    }
}
