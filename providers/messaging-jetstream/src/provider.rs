//! The wRPC side.
//!
//! - Components publish through `wasmcloud:messaging/consumer` (served here): a publish is
//!   stored by the event stream before it returns; a request is plain NATS request/reply.
//! - Each link from this provider to a component (`handler`) names the subjects the
//!   component consumes in its source config `subscriptions`; every subject gets a
//!   durable consumer named after the component, run by a task here that calls the
//!   component's `handle-message` for each event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use tokio::sync::{watch, Mutex, OnceCell};
use ticketing_common::events::HandlerError;
use ticketing_provider_support::settings::{lattice_nats_url, redacted};
use ticketing_provider_support::{CallOutcome, LinkKey};
use ticketing_provider_support::trace::{call_span, continue_trace, TRACEPARENT};
use wasmcloud_provider_sdk::wasmcloud_tracing::context::TraceContextInjector;
use tracing::{info, warn, Instrument as _};
use wasmcloud_provider_sdk::{
    get_connection, serve_provider_exports, Context, LinkConfig, LinkDeleteInfo, Provider, ProviderInitConfig,
};

use crate::bus::Bus;
use crate::config::{subscriptions, ProviderSettings};

mod bindings {
    wit_bindgen_wrpc::generate!({
        path: "../../wit",
        world: "messaging-jetstream-provider",
        generate_all,
    });
}

use bindings::exports::wasmcloud::messaging::consumer;
use bindings::wasmcloud::messaging::handler;
use bindings::wasmcloud::messaging::types::BrokerMessage;

#[derive(Clone, Default)]
pub struct MessagingJetstream {
    bus: Arc<OnceCell<Bus>>,
    /// Stop switches of the consuming tasks, per link.
    links: Arc<Mutex<HashMap<LinkKey, watch::Sender<bool>>>>,
}

pub async fn run() -> Result<()> {
    let provider = MessagingJetstream::default();
    let (wrpc, shutdown) = ticketing_provider_support::start(&provider, "messaging-jetstream").await?;
    serve_provider_exports(&wrpc, provider, shutdown, bindings::serve).await
}

impl MessagingJetstream {
    fn bus(&self) -> Result<&Bus, String> {
        self.bus.get().ok_or_else(|| "the messaging provider is not connected to NATS".to_string())
    }
}

impl Provider for MessagingJetstream {
    async fn init(&self, init: impl ProviderInitConfig) -> Result<()> {
        let settings = ProviderSettings::from_config(init.get_config(), init.get_secrets(), &lattice_nats_url())?;
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(&settings.nats_url)
            .await
            .with_context(|| format!("failed to connect to NATS at {}", redacted(&settings.nats_url)))?;
        let bus = Bus::connect(nats, settings.bus.clone()).await?;
        info!(nats = redacted(&settings.nats_url), stream = settings.bus.stream, "event streams ready");
        let _ = self.bus.set(bus);
        Ok(())
    }

    async fn receive_link_config_as_source(&self, link: LinkConfig<'_>) -> Result<()> {
        let subjects = subscriptions(link.config)?;
        let bus = self.bus().map_err(anyhow::Error::msg)?.clone();
        let key = LinkKey::as_source(&link);
        let component = key.component.clone();
        // The handler may take up to ack_wait; the bus decides when it timed out.
        let client = get_connection().get_wrpc_client_custom(&component, Some(bus.settings().ack_wait * 2)).await?;
        let (stop, stopped) = watch::channel(false);
        for subject in &subjects {
            tokio::spawn(deliver(bus.clone(), client.clone(), component.clone(), subject.clone(), stopped.clone()));
        }
        info!(component, link = link.link_name, ?subjects, "delivering events");
        if let Some(old) = self.links.lock().await.insert(key, stop) {
            let _ = old.send(true);
        }
        Ok(())
    }

    async fn delete_link_as_source(&self, info: impl LinkDeleteInfo) -> Result<()> {
        let key = LinkKey::deleted_as_source(&info);
        if let Some(stop) = self.links.lock().await.remove(&key) {
            let _ = stop.send(true);
            info!(component = key.component, link = key.name, "stopped delivering events; they wait in the stream");
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        for (_, stop) in self.links.lock().await.drain() {
            let _ = stop.send(true);
        }
        Ok(())
    }
}

/// The span of one delivery of an event to a component: a child of the request that
/// announced the event when it carries that request's trace.
fn delivery_span(component: &str, subject: &str, trace: Option<String>) -> tracing::Span {
    let span = tracing::info_span!("deliver", otel.name = %format!("deliver {subject}"), otel.kind = "consumer", component);
    if let Some(trace) = trace {
        continue_trace(&span, [(TRACEPARENT.to_string(), trace)]);
    }
    span
}

/// The current span's trace context as wRPC headers, so the component's invocation
/// continues it.
fn trace_headers() -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    for (key, value) in TraceContextInjector::default_with_span().iter() {
        headers.insert(key.as_str(), value.as_str());
    }
    headers
}

/// Runs one durable consumer until told to stop, starting it again if it breaks (for
/// example while NATS restarts).
async fn deliver(bus: Bus, client: wasmcloud_provider_sdk::provider::WrpcClient, component: String, subject: String, mut stopped: watch::Receiver<bool>) {
    loop {
        let mut stop = stopped.clone();
        let until_stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let handle = |subject: String, body: Bytes, trace: Option<String>| {
            let client = client.clone();
            let span = delivery_span(&component, &subject, trace);
            async move {
                let message = BrokerMessage { subject, body, reply_to: None };
                // The handler's error says whether the event may pass on a later try.
                let headers = trace_headers();
                CallOutcome::of_call(handler::handle_message(&client, Some(headers), &message).await, |reason| {
                    match HandlerError::from_wire(&reason) {
                        HandlerError::Retry(reason) => CallOutcome::Failed(reason),
                        HandlerError::Reject(reason) => CallOutcome::Rejected(reason),
                    }
                })
            }
            .instrument(span)
        };
        match bus.consume(&component, &subject, handle, until_stopped).await {
            Ok(()) => return,
            Err(e) => warn!(component, subject, error = format!("{e:#}"), "consumer stopped; starting it again shortly"),
        }
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}


impl consumer::Handler<Option<Context>> for MessagingJetstream {
    async fn publish(&self, cx: Option<Context>, message: BrokerMessage) -> Result<Result<(), String>> {
        let span = call_span(&cx, "messaging publish");
        async move {
            let bus = match self.bus() { Ok(b) => b, Err(e) => return Ok(Err(e)) };
            Ok(bus.publish(&message.subject, message.body).await.map_err(|e| {
                let component = cx.and_then(|cx| cx.component).unwrap_or_default();
                warn!(component, subject = message.subject, error = format!("{e:#}"), "publish failed");
                format!("publish to {} failed: {e:#}", message.subject)
            }))
        }
        .instrument(span)
        .await
    }

    async fn request(&self, cx: Option<Context>, subject: String, body: Bytes, timeout_ms: u32) -> Result<Result<BrokerMessage, String>> {
        let span = call_span(&cx, "messaging request");
        async move {
            let bus = match self.bus() { Ok(b) => b, Err(e) => return Ok(Err(e)) };
            Ok(bus
                .request(&subject, body, Duration::from_millis(timeout_ms.into()))
                .await
                .map(|reply| BrokerMessage { subject: reply.subject.to_string(), body: reply.payload, reply_to: None })
                .map_err(|e| format!("{e:#}")))
        }
        .instrument(span)
        .await
    }

}
