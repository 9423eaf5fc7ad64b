//! The wRPC side.
//!
//! - Components schedule and cancel jobs through `ticketing:jobs/scheduler` (served here);
//!   jobs are kept per component (the caller's id is the namespace).
//! - A link from this provider to a component (`runner`) starts the loop that runs the
//!   component's due jobs by calling its `run`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use ticketing_provider_support::settings::redacted;
use ticketing_provider_support::CallOutcome;
use tokio::sync::{watch, Mutex, OnceCell};
use ticketing_provider_support::trace::call_span;
use tracing::{info, warn, Instrument as _};
use wasmcloud_provider_sdk::provider::WrpcClient;
use wasmcloud_provider_sdk::{
    get_connection, serve_provider_exports, Context, LinkConfig, LinkDeleteInfo, Provider, ProviderInitConfig,
};

use crate::config::{redis_url, ProviderSettings};
use crate::delivery::deliver;
use crate::jobs::{JobStore, Taken};

mod bindings {
    wit_bindgen_wrpc::generate!({
        path: "../../wit",
        world: "scheduler-redis-provider",
        generate_all,
    });
}

use bindings::exports::ticketing::jobs::scheduler;
use bindings::ticketing::jobs::runner;
use bindings::ticketing::jobs::types::{Job, JobId, RunError, ScheduleError};

#[derive(Clone, Default)]
pub struct SchedulerRedis {
    /// How often due jobs are looked for, and the job store of components without their own Redis.
    defaults: Arc<OnceCell<(Duration, JobStore)>>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Components whose link names a Redis of their own.
    own_stores: HashMap<String, JobStore>,
    /// Running delivery loops per component: the client that reaches it and the stop switch.
    runners: HashMap<String, (WrpcClient, watch::Sender<bool>)>,
}

pub async fn run() -> Result<()> {
    let provider = SchedulerRedis::default();
    let (wrpc, shutdown) = ticketing_provider_support::start(&provider, "scheduler-redis").await?;
    serve_provider_exports(&wrpc, provider, shutdown, bindings::serve).await
}

impl SchedulerRedis {
    fn defaults(&self) -> Result<&(Duration, JobStore), String> {
        self.defaults.get().ok_or_else(|| "the scheduler is not connected to Redis".to_string())
    }

    /// The component making a call: its id is the namespace of its jobs.
    fn caller(cx: Option<Context>) -> Result<String, ScheduleError> {
        cx.and_then(|cx| cx.component).ok_or_else(|| ScheduleError::Refused("call without an invocation context".into()))
    }

    async fn store_for(&self, component: &str) -> Result<JobStore, ScheduleError> {
        if let Some(store) = self.state.lock().await.own_stores.get(component) {
            return Ok(store.clone());
        }
        Ok(self.defaults().map_err(ScheduleError::StoreUnavailable)?.1.clone())
    }

    /// (Re)starts the loop running `component`'s jobs.
    async fn start_runner(&self, state: &mut State, component: &str, client: WrpcClient) -> Result<(), String> {
        let (poll, default_store) = self.defaults()?;
        let store = state.own_stores.get(component).cloned().unwrap_or_else(|| default_store.clone());
        let (stop, stopped) = watch::channel(false);
        let run = {
            let client = client.clone();
            move |job: Taken| {
                let client = client.clone();
                async move {
                    let result = runner::run(&client, None, &job.id, &Bytes::from(job.payload)).await;
                    CallOutcome::of_call(result, |error| match error {
                        RunError::Retry(reason) => CallOutcome::Failed(reason),
                        RunError::Reject(reason) => CallOutcome::Rejected(reason),
                    })
                }
            }
        };
        tokio::spawn(deliver(store, component.to_string(), *poll, run, stopped));
        if let Some((_, old)) = state.runners.insert(component.to_string(), (client, stop)) {
            let _ = old.send(true);
        }
        Ok(())
    }
}


impl Provider for SchedulerRedis {
    async fn init(&self, init: impl ProviderInitConfig) -> Result<()> {
        let settings = ProviderSettings::from_config(init.get_config(), init.get_secrets())?;
        let store = JobStore::connect(&settings.redis_url, settings.jobs.clone()).await?;
        info!(redis = redacted(&settings.redis_url), "job store ready");
        let _ = self.defaults.set((settings.poll, store));
        Ok(())
    }

    /// A component that schedules jobs; its link may name a Redis of its own.
    async fn receive_link_config_as_target(&self, link: LinkConfig<'_>) -> Result<()> {
        let Some(url) = redis_url(link.config, link.secrets) else { return Ok(()) };
        let (_, default_store) = self.defaults().map_err(anyhow::Error::msg)?;
        let store = JobStore::connect(&url, default_store.settings().clone()).await?;
        info!(component = link.source_id, redis = redacted(&url), "jobs of this component kept in their own Redis");
        let mut state = self.state.lock().await;
        state.own_stores.insert(link.source_id.to_string(), store);
        if let Some((client, _)) = state.runners.get(link.source_id).cloned() {
            self.start_runner(&mut state, link.source_id, client).await.map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// A component whose due jobs this provider runs.
    async fn receive_link_config_as_source(&self, link: LinkConfig<'_>) -> Result<()> {
        let client = get_connection().get_wrpc_client(link.target_id).await?;
        let mut state = self.state.lock().await;
        self.start_runner(&mut state, link.target_id, client).await.map_err(anyhow::Error::msg)?;
        info!(component = link.target_id, "running this component's due jobs");
        Ok(())
    }

    async fn delete_link_as_source(&self, info: impl LinkDeleteInfo) -> Result<()> {
        if let Some((_, stop)) = self.state.lock().await.runners.remove(info.get_target_id()) {
            let _ = stop.send(true);
            info!(component = info.get_target_id(), "stopped running jobs; they wait in Redis");
        }
        Ok(())
    }

    async fn delete_link_as_target(&self, info: impl LinkDeleteInfo) -> Result<()> {
        self.state.lock().await.own_stores.remove(info.get_source_id());
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        for (_, (_, stop)) in self.state.lock().await.runners.drain() {
            let _ = stop.send(true);
        }
        Ok(())
    }
}

impl scheduler::Handler<Option<Context>> for SchedulerRedis {
    async fn schedule(&self, cx: Option<Context>, job: Job) -> Result<Result<bool, ScheduleError>> {
        let span = call_span(&cx, "scheduler schedule");
        async move {
            let component = match Self::caller(cx) { Ok(c) => c, Err(e) => return Ok(Err(e)) };
            if job.id.is_empty() {
                return Ok(Err(ScheduleError::Refused("a job needs an id".into())));
            }
            let store = match self.store_for(&component).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.schedule(&component, &job.id, &job.payload, job.due_ms).await.map_err(|e| {
                warn!(component, job = job.id, error = format!("{e:#}"), "schedule failed");
                ScheduleError::StoreUnavailable(format!("schedule failed: {e:#}"))
            }))
        }
        .instrument(span)
        .await
    }

    async fn cancel(&self, cx: Option<Context>, id: JobId) -> Result<Result<bool, ScheduleError>> {
        let span = call_span(&cx, "scheduler cancel");
        async move {
            let component = match Self::caller(cx) { Ok(c) => c, Err(e) => return Ok(Err(e)) };
            let store = match self.store_for(&component).await { Ok(s) => s, Err(e) => return Ok(Err(e)) };
            Ok(store.cancel(&component, &id).await.map_err(|e| ScheduleError::StoreUnavailable(format!("cancel failed: {e:#}"))))
        }
        .instrument(span)
        .await
    }
}
