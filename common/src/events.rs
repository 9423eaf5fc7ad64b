//! The events services exchange over NATS: one type per subject, so that publisher and
//! listener share one definition and can never disagree on a field.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, TicketId, UserId};
use crate::money::Cents;
use crate::time::Timestamp;

/// An event payload and the subject it travels on. The subjects are written once, in
/// `api/events.json`; the test `subjects_are_the_ones_in_api_events_json` checks every impl
/// against it (list a new one there).
pub trait Event: Serialize + DeserializeOwned {
    const SUBJECT: &'static str;

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("event payloads always serialise")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("bad {} payload: {e}", Self::SUBJECT))
    }
}

/// An event stored together with the change it announces: the transactional outbox.
///
/// `wasi:keyvalue` has no transactions, so a change and its events must travel in one
/// `set`: the entity's JSON carries them in its [`OUTBOX_FIELD`], and our keyvalue
/// provider publishes them to the event stream once the change is stored, retrying until
/// the stream acknowledges (with the id as `Nats-Msg-Id`, so a repeat is dropped). A
/// stored change therefore always gets its events out, and a change that failed to store
/// never announces anything. See `JsonStore::set_json_announcing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// Unique per event: the stream de-duplicates repeats by it.
    pub id: String,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// The field of a stored entity that holds its [`Announcement`]s until they are published.
pub const OUTBOX_FIELD: &str = "_outbox";

impl Announcement {
    pub fn of<E: Event>(event: &E) -> Self {
        Self {
            id: crate::ids::new_id(),
            subject: E::SUBJECT.to_string(),
            payload: serde_json::to_value(event).expect("event payloads always serialise"),
        }
    }

    /// The event it carries, if it is one of type `E` (for tests and tools).
    pub fn decode<E: Event>(&self) -> Result<E, String> {
        if self.subject != E::SUBJECT {
            return Err(format!("expected {}, got {}", E::SUBJECT, self.subject));
        }
        serde_json::from_value(self.payload.clone()).map_err(|e| format!("bad {} payload: {e}", E::SUBJECT))
    }
}

/// Why an event handler did not handle an event; it decides what the bus does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// May succeed later (a store outage, a race lost, an event that arrived before the
    /// one it depends on): delivered again after a backoff, dead-lettered after the
    /// last attempt.
    Retry(String),
    /// Can never succeed (a payload that does not decode, a subject nobody handles):
    /// dead-lettered at once, with the reason, instead of being tried again for minutes.
    Reject(String),
}

/// What an event handler returns.
pub type Handled = Result<(), HandlerError>;

/// How a rejection is marked in the plain error string of `wasmcloud:messaging/handler`.
const REJECT_MARK: &str = "reject: ";

impl HandlerError {
    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError::Retry(reason.into())
    }

    /// The error string the messaging interface carries: a rejection is marked, anything
    /// else means "retry".
    pub fn to_wire(&self) -> String {
        match self {
            HandlerError::Retry(reason) => reason.clone(),
            HandlerError::Reject(reason) => format!("{REJECT_MARK}{reason}"),
        }
    }

    /// Reads [`HandlerError::to_wire`] back (in the messaging provider); an unmarked
    /// error, from any component, is retried.
    pub fn from_wire(text: &str) -> Self {
        match text.strip_prefix(REJECT_MARK) {
            Some(reason) => HandlerError::Reject(reason.to_string()),
            None => HandlerError::Retry(text.to_string()),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl From<crate::store::StoreError> for HandlerError {
    /// The store is unavailable: try again later.
    fn from(e: crate::store::StoreError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

/// Decodes an event of type `E` and runs `handler` on it; a payload that does not decode
/// is rejected (no retry can fix it).
pub fn decode_and<E: Event>(body: &[u8], handler: impl FnOnce(&E) -> Handled) -> Handled {
    handler(&E::from_bytes(body).map_err(HandlerError::Reject)?)
}

/// The answer for a subject a component does not consume: rejected, so a misconfigured
/// subscription shows up in the dead letters at once.
pub fn unknown_subject(subject: &str) -> Handled {
    Err(HandlerError::Reject(format!("no handler for subject `{subject}`")))
}

/// Order statuses on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    #[serde(rename = "created")]
    Created,
    #[serde(rename = "cancelled")]
    Cancelled,
    #[serde(rename = "awaiting:payment")]
    AwaitingPayment,
    #[serde(rename = "complete")]
    Complete,
}

impl OrderStatus {
    /// The wire form: `created`, `cancelled`, `awaiting:payment`, `complete`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::AwaitingPayment => "awaiting:payment",
            OrderStatus::Complete => "complete",
        }
    }

    /// The status written in its wire form, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [OrderStatus::Created, OrderStatus::Cancelled, OrderStatus::AwaitingPayment, OrderStatus::Complete]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketCreated {
    pub id: TicketId,
    pub version: u64,
    pub title: String,
    pub price: Cents,
    pub user_id: UserId,
}

impl Event for TicketCreated {
    const SUBJECT: &'static str = "ticket:created";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    pub id: TicketId,
    pub version: u64,
    pub title: String,
    pub price: Cents,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

impl Event for TicketUpdated {
    const SUBJECT: &'static str = "ticket:updated";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTicket {
    pub id: TicketId,
    pub price: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub id: OrderId,
    pub version: u64,
    pub status: OrderStatus,
    pub user_id: UserId,
    /// The instant the reservation ends, as ISO 8601 (RFC 3339) text.
    #[serde(with = "crate::time::as_iso8601")]
    pub expires_at: Timestamp,
    pub ticket: OrderTicket,
}

impl Event for OrderCreated {
    const SUBJECT: &'static str = "order:created";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    pub id: TicketId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub id: OrderId,
    pub version: u64,
    pub ticket: TicketRef,
}

impl Event for OrderCancelled {
    const SUBJECT: &'static str = "order:cancelled";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationComplete {
    pub order_id: OrderId,
}

impl Event for ExpirationComplete {
    const SUBJECT: &'static str = "expiration:complete";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub id: String,
    pub order_id: OrderId,
    pub stripe_id: String,
}

impl Event for PaymentCreated {
    const SUBJECT: &'static str = "payment:created";
}

/// Not in the reference: a declined card ends the order (it is cancelled and the ticket
/// released) instead of leaving it to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub order_id: OrderId,
    pub reason: String,
}

impl Event for PaymentFailed {
    const SUBJECT: &'static str = "payment:failed";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subjects_are_the_ones_in_api_events_json() {
        let shared: serde_json::Value = serde_json::from_str(include_str!("../../api/events.json")).unwrap();
        let listed: Vec<&str> = shared["subjects"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        let ours = [
            TicketCreated::SUBJECT,
            TicketUpdated::SUBJECT,
            OrderCreated::SUBJECT,
            OrderCancelled::SUBJECT,
            ExpirationComplete::SUBJECT,
            PaymentCreated::SUBJECT,
            PaymentFailed::SUBJECT,
        ];
        assert_eq!(listed, ours, "api/events.json and the Event impls name the same subjects, in the same order");
    }

    #[test]
    fn payloads_match_the_reference_field_names() {
        let e = OrderCreated {
            id: "o".into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u".into(),
            expires_at: Timestamp::from_millis(1_795_428_900_000),
            ticket: OrderTicket { id: "t".into(), price: Cents(2050) },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"id":"o","version":0,"status":"created","userId":"u","expiresAt":"2026-11-23T10:15:00.000Z","ticket":{"id":"t","price":20.5}})
        );
        assert_eq!(OrderCreated::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn ticket_updated_omits_a_missing_order_id() {
        let e = TicketUpdated { id: "t".into(), version: 2, title: "x".into(), price: Cents(1000), user_id: "u".into(), order_id: None };
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"id":"t","version":2,"title":"x","price":10,"userId":"u"}));
    }

    #[test]
    fn announcements_carry_their_event_under_a_fresh_id() {
        let event = ExpirationComplete { order_id: "a".into() };
        let (first, second) = (Announcement::of(&event), Announcement::of(&event));
        assert_ne!(first.id, second.id, "every announcement is its own event");
        assert_eq!(first.subject, "expiration:complete");
        assert_eq!(first.payload, json!({"orderId": "a"}));
        assert_eq!(first.decode::<ExpirationComplete>().unwrap(), event);
        assert!(first.decode::<PaymentFailed>().is_err());
    }

    #[test]
    fn handler_errors_cross_the_wire_as_retry_or_reject() {
        for error in [HandlerError::retry("store down"), HandlerError::Reject("bad payload".into())] {
            assert_eq!(HandlerError::from_wire(&error.to_wire()), error);
        }
        assert_eq!(HandlerError::from_wire("anything else"), HandlerError::retry("anything else"));
        let rejected = decode_and::<ExpirationComplete>(b"{}", |_| Ok(())).unwrap_err();
        assert!(matches!(rejected, HandlerError::Reject(ref r) if r.contains("bad expiration:complete payload")), "{rejected}");
        assert_eq!(decode_and::<ExpirationComplete>(br#"{"orderId":"o"}"#, |e| Err(HandlerError::retry(e.order_id.to_string()))), Err(HandlerError::retry("o")));
        assert!(matches!(unknown_subject("x:y"), Err(HandlerError::Reject(_))));
        let from_store: HandlerError = crate::store::StoreError("down".into()).into();
        assert!(matches!(from_store, HandlerError::Retry(_)));
    }

    #[test]
    fn statuses_use_the_wire_names() {
        assert_eq!(serde_json::to_string(&OrderStatus::AwaitingPayment).unwrap(), r#""awaiting:payment""#);
        for status in [OrderStatus::Created, OrderStatus::Cancelled, OrderStatus::AwaitingPayment, OrderStatus::Complete] {
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{}\"", status.as_str()));
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("paid"), None);
        assert!(ExpirationComplete::from_bytes(b"{}").is_err());
        assert_eq!(ExpirationComplete::SUBJECT, "expiration:complete");
    }
}
