//! Events out through `wasmcloud:messaging` (events in are dispatched by each service's
//! plain-Rust `dispatch`, see `ticketing_common::events::HandlerError`).
//!
//! Changes announce themselves through the transactional outbox: a service stores its
//! events with the change (`JsonStore::set_json_announcing`) and the keyvalue provider
//! publishes them, so neither an HTTP answer nor an event handler depends on a publish.
//! Only a component with nothing to store (expiration) publishes directly, from a
//! handler that is retried until the publish succeeds.

use ticketing_common::events::Event;

use crate::wasmcloud::messaging::consumer;
use crate::wasmcloud::messaging::types::BrokerMessage;

/// Publishes `event` now; the stream has stored it when this returns `Ok`.
pub fn publish<E: Event>(event: &E) -> Result<(), String> {
    consumer::publish(&BrokerMessage { subject: E::SUBJECT.to_string(), body: event.to_bytes(), reply_to: None })
}
