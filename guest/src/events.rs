//! Events in and out through `wasmcloud:messaging`.
//!
//! Handlers never publish directly: they push to an [`Outbox`], and the adapter publishes
//! it after the handler's writes succeeded. An event handler that could not publish
//! reports an error, so the messaging provider redelivers the event and the (idempotent)
//! handler announces again.

use ticketing_common::events::{Event, Outbox};
use ticketing_common::http::Response;
use ticketing_common::ApiError;

use crate::wasmcloud::messaging::consumer;
use crate::wasmcloud::messaging::types::BrokerMessage;

/// Publishes everything in the outbox, in order; stops at the first failure.
pub fn publish(outbox: &Outbox) -> Result<(), String> {
    for (subject, body) in outbox.take() {
        consumer::publish(&BrokerMessage { subject: subject.to_string(), body, reply_to: None })?;
    }
    Ok(())
}

/// Decodes an event, runs `handler`, publishes what it announced.
pub fn handle<E: Event>(body: &[u8], handler: impl FnOnce(&E, &Outbox) -> Result<(), String>) -> Result<(), String> {
    let event = E::from_bytes(body)?;
    let outbox = Outbox::default();
    handler(&event, &outbox)?;
    publish(&outbox)
}

/// Serves an HTTP request whose handler may announce events: they are published after
/// the handler returns (see [`publish_after`]).
pub fn serve_http(
    request: crate::wasi::http::types::IncomingRequest,
    out: crate::wasi::http::types::ResponseOutparam,
    handler: impl FnOnce(&ticketing_common::http::Request, &Outbox) -> Response,
) {
    let outbox = Outbox::default();
    crate::http::serve(request, out, |request| publish_after(handler(&request, &outbox), &outbox));
}

/// The answer to an HTTP request whose handler filled `outbox`: the handler's response
/// when every event went out, a 503 when the change was stored but not announced.
fn publish_after(response: Response, outbox: &Outbox) -> Response {
    match publish(outbox) {
        Ok(()) => response,
        Err(reason) => {
            crate::log::error("events", &format!("publish failed after {}: {reason}", response.status));
            Response::from(ApiError::new(503, "The service could not complete the request, please try again"))
        }
    }
}

/// What a component answers for a subject it does not consume: an error, so that a
/// misconfigured subscription shows up in the dead letters instead of being dropped.
pub fn unknown(subject: &str) -> Result<(), String> {
    Err(format!("no handler for subject `{subject}`"))
}
