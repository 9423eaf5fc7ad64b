//! The delivery engine.
//!
//! Components publish to plain subjects such as `ticket:created`; on the wire they travel
//! as `<prefix>.ticket:created` (prefix `events` by default), all kept by one stream, so
//! a new event subject needs no stream change. Failed events that ran out of attempts go
//! to `<dead_letter_prefix>.<consumer>` in a stream of their own, for an operator to read.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer, stream, AckKind};
use bytes::Bytes;
use futures::StreamExt as _;
use ticketing_provider_support::backoff::{delay_after, Doubling};
use ticketing_provider_support::trace::TRACEPARENT;
use ticketing_provider_support::CallOutcome;
use tracing::{debug, warn};

#[derive(Debug, Clone)]
pub struct BusSettings {
    pub stream: String,
    pub prefix: String,
    pub dead_letter_stream: String,
    pub dead_letter_prefix: String,
    /// How long events are kept (0 = forever).
    pub max_age: Duration,
    /// How long a handler may take before the event counts as failed and is redelivered.
    pub ack_wait: Duration,
    /// Attempts before an event goes to the dead-letter subject.
    pub max_deliver: i64,
    /// Delays before the 2nd, 3rd, ... attempt; the last one repeats.
    pub backoff: Vec<Duration>,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            stream: "TICKETING_EVENTS".into(),
            prefix: "events".into(),
            dead_letter_stream: "TICKETING_DEAD_LETTERS".into(),
            dead_letter_prefix: "deadletter".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            ack_wait: Duration::from_secs(5),
            max_deliver: 10,
            // Ten attempts span about a minute: longer than a version claim abandoned
            // half-way blocks a record (`ABANDONED_VERSION_MS` in common), so an event
            // held up by one is applied, not dead-lettered.
            backoff: vec![Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(5), Duration::from_secs(10)],
        }
    }
}

impl BusSettings {
    /// Delay before the next attempt after `delivered` failed ones.
    pub fn retry_delay(&self, delivered: i64) -> Duration {
        delay_after(&self.backoff, u64::try_from(delivered).unwrap_or(0)).unwrap_or(Duration::from_secs(1))
    }
}

/// The durable consumer name of a subscriber for a subject: NATS names allow only
/// letters, digits, `-` and `_`. The examples in `api/events.json` pin this rule for the
/// Python tool too (`scripts/lattice/events.py`, `consumer_name`).
pub fn consumer_name(subscriber: &str, subject: &str) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>();
    format!("{}__{}", clean(subscriber), clean(subject))
}

#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    settings: BusSettings,
}

/// How long one pull waits at the server for an event.
const PULL_WAIT: Duration = Duration::from_secs(5);

/// Longest pause between offers to an unreachable subscriber.
const MAX_UNREACHABLE_PAUSE: Duration = Duration::from_secs(2);

impl Bus {
    /// Connects and makes sure both streams exist with the configured retention.
    pub async fn connect(client: async_nats::Client, settings: BusSettings) -> Result<Bus> {
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.prefix)],
            max_age: settings.max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("failed to create the event stream")?;
        js.get_or_create_stream(stream::Config {
            name: settings.dead_letter_stream.clone(),
            subjects: vec![format!("{}.>", settings.dead_letter_prefix)],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("failed to create the dead-letter stream")?;
        Ok(Bus { client, js, settings })
    }

    pub fn settings(&self) -> &BusSettings {
        &self.settings
    }

    /// Publishes an event and waits until the stream has stored it.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {
        let ack = self.js.publish(format!("{}.{subject}", self.settings.prefix), payload).await?;
        ack.await.context("the stream did not acknowledge the event")?;
        Ok(())
    }

    /// Plain NATS request/reply on `subject` as given (not an event: not stored, no prefix),
    /// for services that answer requests.
    pub async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<async_nats::Message> {
        match tokio::time::timeout(timeout, self.client.request(subject.to_string(), payload)).await {
            Ok(reply) => reply.with_context(|| format!("request to {subject} failed")),
            Err(_) => anyhow::bail!("request to {subject} timed out after {} ms", timeout.as_millis()),
        }
    }

    /// Delivers every event of `subject` to `handler` until `shutdown` resolves. Events
    /// published while nobody consumed wait in the stream; several callers with the same
    /// `subscriber` share the work (a queue group).
    ///
    /// What the handler returns decides what becomes of the event: [`CallOutcome::Done`]
    /// acknowledges it; `Failed` has it redelivered after the backoff, and dead-lettered
    /// after `max_deliver` attempts; `Rejected` dead-letters it at once; `Unreachable`
    /// holds it (in order, without using up an attempt) and offers it again until someone
    /// takes it, so a subscriber that is down does not make its events dead letters.
    pub async fn consume<H, F>(&self, subscriber: &str, subject: &str, handler: H, shutdown: impl Future<Output = ()>) -> Result<()>
    where
        H: Fn(String, Bytes, Option<String>) -> F,
        F: Future<Output = CallOutcome>,
    {
        let name = consumer_name(subscriber, subject);
        let stream = self.js.get_stream(&self.settings.stream).await?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.{subject}", self.settings.prefix),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    // Unlimited: we (not the server) decide when an event goes to the dead
                    // letters, so the server never drops one silently.
                    max_deliver: -1,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("failed to create consumer {name}"))?;
        tokio::pin!(shutdown);
        loop {
            // One event per pull, a long poll the server answers as soon as an event is
            // there: no event waits in a local buffer past its ack deadline while we hold
            // another. (A continuous pull stream with batches of one stalled for its whole
            // expiry now and then.)
            let pull = async {
                let mut batch = consumer.batch().max_messages(1).expires(PULL_WAIT).messages().await?;
                anyhow::Ok(batch.next().await)
            };
            let message = tokio::select! {
                () = &mut shutdown => return Ok(()),
                pulled = pull => match pulled {
                    Ok(Some(Ok(message))) => message,
                    Ok(None) => continue, // nothing within PULL_WAIT
                    Ok(Some(Err(e))) => {
                        warn!(consumer = %name, error = %e, "receive failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(e) => {
                        warn!(consumer = %name, error = %e, "pull failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
            };
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            // The trace of the request whose change announced the event.
            let trace = message.headers.as_ref().and_then(|h| h.get(TRACEPARENT)).map(|v| v.as_str().to_string());
            // Offers to an unreachable subscriber come well within the ack deadline that
            // `Progress` renews each time.
            let mut pauses = Doubling::new(Duration::from_millis(100), MAX_UNREACHABLE_PAUSE.min(self.settings.ack_wait / 3));
            let outcome = loop {
                let attempt = tokio::time::timeout(self.settings.ack_wait, handler(subject.to_string(), message.payload.clone(), trace.clone()));
                match attempt.await.unwrap_or_else(|_| CallOutcome::Failed("the handler timed out".into())) {
                    CallOutcome::Unreachable(reason) => {
                        let pause = pauses.next_pause();
                        debug!(consumer = %name, %reason, ?pause, "subscriber unreachable; holding the event");
                        // Keep the event ours (and in order) while we wait.
                        let _ = message.ack_with(AckKind::Progress).await;
                        tokio::select! {
                            () = &mut shutdown => {
                                let _ = message.ack_with(AckKind::Nak(None)).await;
                                return Ok(());
                            }
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                    CallOutcome::Done => break Ok(()),
                    CallOutcome::Failed(reason) => break Err((reason, false)),
                    CallOutcome::Rejected(reason) => break Err((reason, true)),
                }
            };
            let result = match outcome {
                Ok(()) => message.ack().await,
                Err((reason, rejected)) if rejected || delivered >= self.settings.max_deliver => {
                    let why = if rejected { "event rejected by its handler" } else { "event failed for the last time" };
                    warn!(consumer = %name, delivered, %reason, "{why}; dead-lettered");
                    self.dead_letter(&name, subject, &message.payload, &reason).await;
                    message.ack_with(AckKind::Term).await
                }
                Err((reason, _)) => {
                    let delay = self.settings.retry_delay(delivered);
                    debug!(consumer = %name, delivered, ?delay, %reason, "event failed; will be redelivered");
                    message.ack_with(AckKind::Nak(Some(delay))).await
                }
            };
            if let Err(e) = result {
                warn!(consumer = %name, error = %e, "acknowledgement failed; the event will come again");
            }
        }
    }

    async fn dead_letter(&self, consumer: &str, subject: &str, payload: &Bytes, reason: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Ticketing-Subject", subject);
        headers.insert("Ticketing-Failure", reason);
        let target = format!("{}.{consumer}", self.settings.dead_letter_prefix);
        match self.js.publish_with_headers(target, headers, payload.clone()).await {
            Ok(ack) => {
                if let Err(e) = ack.await {
                    warn!(error = %e, "dead letter not stored");
                }
            }
            Err(e) => warn!(error = %e, "dead letter not published"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_the_ones_in_api_events_json() {
        let shared: serde_json::Value = serde_json::from_str(include_str!("../../../api/events.json")).unwrap();
        let examples = shared["consumer_names"].as_array().unwrap();
        assert!(!examples.is_empty());
        for e in examples {
            let (subscriber, subject) = (e["subscriber"].as_str().unwrap(), e["subject"].as_str().unwrap());
            assert_eq!(consumer_name(subscriber, subject), e["consumer"].as_str().unwrap(), "{e}");
        }
    }

    #[test]
    fn retry_delays_follow_the_backoff_and_repeat_the_last() {
        let s = BusSettings::default();
        assert_eq!(s.retry_delay(1), Duration::from_millis(500));
        assert_eq!(s.retry_delay(2), Duration::from_secs(1));
        assert_eq!(s.retry_delay(40), Duration::from_secs(10));
    }
}
