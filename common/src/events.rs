//! The events services exchange over NATS: one type per subject, so that publisher and
//! listener share one definition and can never disagree on a field.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// An event payload and the subject it travels on.
pub trait Event: Serialize + DeserializeOwned {
    const SUBJECT: &'static str;

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("event payloads always serialise")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("bad {} payload: {e}", Self::SUBJECT))
    }
}

/// Events a request or an event handler wants published, in order. The component adapter
/// publishes them after the handler's writes succeeded.
#[derive(Debug, Default)]
pub struct Outbox {
    items: std::cell::RefCell<Vec<(&'static str, Vec<u8>)>>,
}

impl Outbox {
    pub fn push<E: Event>(&self, event: &E) {
        self.items.borrow_mut().push((E::SUBJECT, event.to_bytes()));
    }

    /// Everything pushed so far, emptying the outbox.
    pub fn take(&self) -> Vec<(&'static str, Vec<u8>)> {
        std::mem::take(&mut self.items.borrow_mut())
    }
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
    pub id: String,
    pub version: u64,
    pub title: String,
    pub price: Cents,
    pub user_id: String,
}

impl Event for TicketCreated {
    const SUBJECT: &'static str = "ticket:created";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    pub id: String,
    pub version: u64,
    pub title: String,
    pub price: Cents,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl Event for TicketUpdated {
    const SUBJECT: &'static str = "ticket:updated";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTicket {
    pub id: String,
    pub price: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub id: String,
    pub version: u64,
    pub status: OrderStatus,
    pub user_id: String,
    /// ISO 8601 (RFC 3339) instant the reservation ends.
    pub expires_at: String,
    pub ticket: OrderTicket,
}

impl Event for OrderCreated {
    const SUBJECT: &'static str = "order:created";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub id: String,
    pub version: u64,
    pub ticket: TicketRef,
}

impl Event for OrderCancelled {
    const SUBJECT: &'static str = "order:cancelled";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationComplete {
    pub order_id: String,
}

impl Event for ExpirationComplete {
    const SUBJECT: &'static str = "expiration:complete";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub id: String,
    pub order_id: String,
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
    pub order_id: String,
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
    fn payloads_match_the_reference_field_names() {
        let e = OrderCreated {
            id: "o".into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u".into(),
            expires_at: "2026-11-23T10:15:00.000Z".into(),
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
    fn the_outbox_keeps_order_and_empties() {
        let outbox = Outbox::default();
        outbox.push(&ExpirationComplete { order_id: "a".into() });
        outbox.push(&PaymentCreated { id: "p".into(), order_id: "a".into(), stripe_id: "ch".into() });
        let items = outbox.take();
        assert_eq!(items.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec!["expiration:complete", "payment:created"]);
        assert!(outbox.take().is_empty());
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
