//! Event handlers of the payments service: its replica of orders. An error says whether
//! the event may succeed later (retried) or never (dead-lettered at once).

use ticketing_common::events::{decode_and, unknown_subject, Event, HandlerError, Handled, OrderCancelled, OrderCreated, OrderStatus};
use ticketing_common::store::KeyValue;

use crate::card::CardGateway;
use crate::payment::refund_if_cancelled;
use crate::store::{self, OrderReplica};

/// Runs the handler of `subject` on the event in `body`.
pub fn dispatch(store: &impl KeyValue, gateway: &impl CardGateway, subject: &str, body: &[u8]) -> Handled {
    match subject {
        OrderCreated::SUBJECT => decode_and(body, |e| on_order_created(store, e)),
        OrderCancelled::SUBJECT => decode_and(body, |e| on_order_cancelled(store, gateway, e)),
        other => unknown_subject(other),
    }
}

/// `order:created`: a new order to pay (a redelivery changes nothing).
pub fn on_order_created(store: &impl KeyValue, event: &OrderCreated) -> Handled {
    if store::order(store, &event.id)?.is_some() {
        return Ok(());
    }
    let replica = OrderReplica {
        id: event.id.clone(),
        version: event.version,
        user_id: event.user_id.clone(),
        price: event.ticket.price,
        status: event.status,
    };
    store::put_order(store, &replica).map_err(Into::into)
}

/// `order:cancelled`, in version order: the order can no longer be paid, and a charge
/// that completed anyway is refunded.
pub fn on_order_cancelled(store: &impl KeyValue, gateway: &impl CardGateway, event: &OrderCancelled) -> Handled {
    let replica = store::order(store, &event.id)?.ok_or_else(|| HandlerError::retry(format!("Order not found: {}", event.id)))?;
    if event.version > replica.version + 1 {
        return Err(HandlerError::retry(format!("order {} is at version {}, event has {}", event.id, replica.version, event.version)));
    }
    if event.version == replica.version + 1 {
        let cancelled = OrderReplica { status: OrderStatus::Cancelled, version: event.version, ..replica };
        store::put_order(store, &cancelled)?;
    }
    // Also on a redelivery: an earlier refund attempt may have failed.
    refund_if_cancelled(store, gateway, &event.id).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Charge, ChargeStatus};
    use crate::testing::{Fake, ORDER};
    use ticketing_common::events::{OrderTicket, TicketRef};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn created() -> OrderCreated {
        OrderCreated {
            id: ORDER.into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u1".into(),
            expires_at: ticketing_common::time::Timestamp::from_millis(1_795_428_900_000),
            ticket: OrderTicket { id: "t1".into(), price: Cents(2050) },
        }
    }

    fn cancelled(version: u64) -> OrderCancelled {
        OrderCancelled { id: ORDER.into(), version, ticket: TicketRef { id: "t1".into() } }
    }

    #[test]
    fn cases_57_58_order_created_replicates_the_price() {
        let store = MemoryStore::default();
        on_order_created(&store, &created()).unwrap();
        on_order_created(&store, &created()).unwrap(); // redelivery
        let replica = store::order(&store, ORDER).unwrap().unwrap();
        assert_eq!((replica.price, replica.version, replica.user_id.as_str()), (Cents(2050), 0, "u1"));
    }

    #[test]
    fn cases_59_60_order_cancelled_applies_in_version_order() {
        let store = MemoryStore::default();
        let fake = Fake::default();
        assert!(on_order_cancelled(&store, &fake, &cancelled(1)).is_err(), "order not known yet");
        on_order_created(&store, &created()).unwrap();
        assert!(on_order_cancelled(&store, &fake, &cancelled(2)).is_err(), "gap: refused");
        on_order_cancelled(&store, &fake, &cancelled(1)).unwrap();
        assert_eq!(store::order(&store, ORDER).unwrap().unwrap().status, OrderStatus::Cancelled);
        on_order_cancelled(&store, &fake, &cancelled(1)).unwrap(); // duplicate
    }

    /// An order whose card was charged (Stripe charge `ch_9`).
    fn paid_order() -> (MemoryStore, Fake) {
        let store = MemoryStore::default();
        on_order_created(&store, &created()).unwrap();
        let charge = Charge {
            id: "c1".into(), order_id: ORDER.into(), status: ChargeStatus::Completed, amount: Cents(2050),
            stripe_id: Some("ch_9".into()), stripe_refund_id: None, failure: None, created_at: ticketing_common::time::Timestamp::from_millis(0),
        };
        store::start_charge(&store, &charge).unwrap();
        (store, Fake::default())
    }

    #[test]
    fn a_cancel_after_a_completed_charge_refunds_it_once() {
        let (store, fake) = paid_order();
        on_order_cancelled(&store, &fake, &cancelled(1)).unwrap();
        on_order_cancelled(&store, &fake, &cancelled(1)).unwrap(); // redelivered
        assert_eq!(fake.refunds(), vec![("ch_9".to_string(), "refund-c1".to_string())]);
        assert_eq!(store::charge_of(&store, ORDER).unwrap().unwrap().stripe_refund_id.as_deref(), Some("re_1"));
    }

    #[test]
    fn a_refund_that_fails_is_retried_until_done() {
        let (store, fake) = paid_order();
        fake.fail_next_refund(crate::card::PayError::Unavailable("stripe down".into()));
        let first = dispatch(&store, &fake, "order:cancelled", &cancelled(1).to_bytes());
        assert!(matches!(first, Err(HandlerError::Retry(_))), "the event comes again: {first:?}");
        assert_eq!(store::order(&store, ORDER).unwrap().unwrap().status, OrderStatus::Cancelled, "the cancellation is kept");
        dispatch(&store, &fake, "order:cancelled", &cancelled(1).to_bytes()).unwrap();
        assert_eq!(fake.refunds().len(), 2, "asked again, with the same idempotency key");
        assert_eq!(fake.refunds()[0], fake.refunds()[1]);
        assert_eq!(store::charge_of(&store, ORDER).unwrap().unwrap().stripe_refund_id.as_deref(), Some("re_1"));
        assert!(matches!(dispatch(&store, &fake, "order:cancelled", b"nope"), Err(HandlerError::Reject(_))));
        assert!(matches!(dispatch(&store, &fake, "ticket:created", b"{}"), Err(HandlerError::Reject(_))));
    }
}
