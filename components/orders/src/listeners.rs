//! Event handlers of the orders service. An error says whether the event may succeed
//! later (retried, dead-lettered after the last attempt) or never (dead-lettered at once).

use ticketing_common::events::{
    decode_and, unknown_subject, Event, ExpirationComplete, HandlerError, Handled, PaymentCreated, PaymentFailed,
    TicketCreated, TicketUpdated,
};
use ticketing_common::store::KeyValue;

use crate::order::{Order, ReplicaUpdate, TicketReplica};
use crate::store;

/// Runs the handler of `subject` on the event in `body`.
pub fn dispatch(store: &impl KeyValue, subject: &str, body: &[u8]) -> Handled {
    match subject {
        TicketCreated::SUBJECT => decode_and(body, |e| on_ticket_created(store, e)),
        TicketUpdated::SUBJECT => decode_and(body, |e| on_ticket_updated(store, e)),
        ExpirationComplete::SUBJECT => decode_and(body, |e| on_expiration_complete(store, e)),
        PaymentCreated::SUBJECT => decode_and(body, |e| on_payment_created(store, e)),
        PaymentFailed::SUBJECT => decode_and(body, |e| on_payment_failed(store, e)),
        other => unknown_subject(other),
    }
}

/// `ticket:created`: a new ticket in the replica. A redelivery changes nothing, even
/// after later updates were applied: the replica is only ever created, never replaced.
pub fn on_ticket_created(store: &impl KeyValue, event: &TicketCreated) -> Handled {
    let replica = TicketReplica { id: event.id.clone(), title: event.title.clone(), price: event.price, version: event.version };
    store::create_ticket(store, &replica).map_err(Into::into)
}

/// `ticket:updated`: applied only in version order. An older or equal version was
/// applied already; a gap means an earlier update has not arrived yet, so we refuse
/// and let it be redelivered.
pub fn on_ticket_updated(store: &impl KeyValue, event: &TicketUpdated) -> Handled {
    let stored = store::ticket(store, &event.id)?.ok_or_else(|| HandlerError::retry(format!("Ticket not found: {}", event.id)))?;
    match stored.update(event) {
        ReplicaUpdate::Apply(next) => Ok(store::put_ticket(store, &next)?),
        ReplicaUpdate::Seen => Ok(()),
        ReplicaUpdate::Gap { have } => {
            Err(HandlerError::retry(format!("ticket {} is at version {have}, event has {}", event.id, event.version)))
        }
    }
}

/// `expiration:complete`: an unpaid order is cancelled (and the ticket released).
pub fn on_expiration_complete(store: &impl KeyValue, event: &ExpirationComplete) -> Handled {
    cancel_unless_paid(store, &event.order_id)
}

/// `payment:failed` (the card was declined): the order ends like an expired one.
pub fn on_payment_failed(store: &impl KeyValue, event: &PaymentFailed) -> Handled {
    cancel_unless_paid(store, &event.order_id)
}

/// Cancels the order (announced with it) unless it is paid. A redelivery finds it
/// cancelled already: its `order:cancelled` was stored with the cancellation, so there is
/// nothing left to do.
fn cancel_unless_paid(store: &impl KeyValue, order_id: &str) -> Handled {
    match load(store, order_id)?.end_unpaid() {
        Some(cancelled) => save(store, &cancelled),
        None => Ok(()),
    }
}

/// `payment:created`: the order is complete. A payment that raced with a cancellation
/// leaves the order cancelled (payments refunds it).
pub fn on_payment_created(store: &impl KeyValue, event: &PaymentCreated) -> Handled {
    match load(store, &event.order_id)?.complete() {
        Some(complete) => save(store, &complete),
        None => Ok(()),
    }
}

/// Stores the order's next version; losing the race to another change is "not handled
/// yet", so the event is retried against the new state.
fn save(store: &impl KeyValue, next: &Order) -> Handled {
    match store::save_next(store, next)? {
        Ok(()) => Ok(()),
        Err(store::Conflict) => Err(HandlerError::retry(format!("order {} changed meanwhile", next.id))),
    }
}

fn load(store: &impl KeyValue, id: &str) -> Result<Order, HandlerError> {
    store::order(store, id)?.ok_or_else(|| HandlerError::retry(format!("Order not found: {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::time::Timestamp;
    use ticketing_common::events::{OrderCancelled, OrderStatus};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn created(version: u64) -> TicketCreated {
        TicketCreated { id: "t1".into(), version, title: "concert".into(), price: Cents(2000), user_id: "u1".into() }
    }

    fn updated(version: u64, title: &str) -> TicketUpdated {
        TicketUpdated { id: "t1".into(), version, title: title.into(), price: Cents(1500), user_id: "u1".into(), order_id: None }
    }

    fn with_order(status: OrderStatus) -> MemoryStore {
        let store = MemoryStore::default();
        assert!(store::claim_ticket(&store, "t1", "o1", Timestamp::now()).unwrap());
        let order = Order { id: "o1".into(), user_id: "u2".into(), status, expires_at: ticketing_common::time::Timestamp::from_millis(0), ticket_id: "t1".into(), version: 0 };
        let ticket = TicketReplica { id: "t1".into(), title: "concert".into(), price: Cents(2000), version: 0 };
        store::insert_order(&store, &order, &ticket).unwrap();
        store.take_announced();
        store
    }

    #[test]
    fn cases_45_46_ticket_created_makes_a_replica() {
        let store = MemoryStore::default();
        on_ticket_created(&store, &created(0)).unwrap();
        let replica = store::ticket(&store, "t1").unwrap().unwrap();
        assert_eq!((replica.title.as_str(), replica.price, replica.version), ("concert", Cents(2000), 0));
        on_ticket_created(&store, &created(0)).unwrap(); // redelivery
        on_ticket_updated(&store, &updated(1, "first")).unwrap();
        on_ticket_created(&store, &created(0)).unwrap(); // redelivery after an update
        assert_eq!(store::ticket(&store, "t1").unwrap().unwrap().version, 1, "the update stays");
    }

    #[test]
    fn cases_47_to_49_updates_apply_in_version_order_only() {
        let store = MemoryStore::default();
        on_ticket_created(&store, &created(0)).unwrap();
        assert!(on_ticket_updated(&store, &updated(2, "second")).is_err(), "gap: v1 missing");
        on_ticket_updated(&store, &updated(1, "first")).unwrap();
        on_ticket_updated(&store, &updated(2, "second")).unwrap();
        on_ticket_updated(&store, &updated(1, "first")).unwrap(); // late duplicate: ignored
        let replica = store::ticket(&store, "t1").unwrap().unwrap();
        assert_eq!((replica.title.as_str(), replica.version, replica.price), ("second", 2, Cents(1500)));
        assert!(on_ticket_updated(&MemoryStore::default(), &updated(1, "x")).is_err(), "unknown ticket");
    }

    #[test]
    fn cases_50_to_52_expiry_cancels_and_announces_and_releases() {
        let store = with_order(OrderStatus::Created);
        on_expiration_complete(&store, &ExpirationComplete { order_id: "o1".into() }).unwrap();
        assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, OrderStatus::Cancelled);
        let events = store.take_announced();
        assert_eq!(events.len(), 1);
        let cancelled = events[0].decode::<OrderCancelled>().unwrap();
        assert_eq!((cancelled.id.as_str(), cancelled.version, cancelled.ticket.id.as_str()), ("o1", 1, "t1"));
        assert!(store::claim_ticket(&store, "t1", "o2", Timestamp::now()).unwrap(), "the ticket can be ordered again");
    }

    #[test]
    fn expiry_leaves_complete_and_cancelled_orders_alone() {
        for status in [OrderStatus::Complete, OrderStatus::Cancelled] {
            let store = with_order(status);
            on_expiration_complete(&store, &ExpirationComplete { order_id: "o1".into() }).unwrap();
            assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, status);
            assert!(store.take_announced().is_empty(), "nothing changed, nothing announced");
            assert!(!store::claim_ticket(&store, "t1", "o2", Timestamp::now()).unwrap(), "still held: nothing was released");
        }
        assert!(on_expiration_complete(&MemoryStore::default(), &ExpirationComplete { order_id: "nope".into() }).is_err());
    }

    #[test]
    fn a_failed_payment_cancels_an_open_order_but_not_a_paid_one() {
        let failed = PaymentFailed { order_id: "o1".into(), reason: "Your card was declined.".into() };
        let store = with_order(OrderStatus::Created);
        on_payment_failed(&store, &failed).unwrap();
        assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, OrderStatus::Cancelled);
        assert_eq!(store.take_announced_subjects(), ["order:cancelled"]);
        let store = with_order(OrderStatus::Complete);
        on_payment_failed(&store, &failed).unwrap();
        assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, OrderStatus::Complete);
    }

    #[test]
    fn events_are_dispatched_by_subject_and_bad_ones_rejected_at_once() {
        let store = MemoryStore::default();
        dispatch(&store, "ticket:created", &created(0).to_bytes()).unwrap();
        assert!(store::ticket(&store, "t1").unwrap().is_some());
        assert!(matches!(dispatch(&store, "ticket:updated", b"[]"), Err(HandlerError::Reject(_))), "never decodes");
        assert!(matches!(dispatch(&store, "order:created", b"{}"), Err(HandlerError::Reject(_))), "not ours");
        let early = dispatch(&store, "expiration:complete", &ExpirationComplete { order_id: "o9".into() }.to_bytes());
        assert!(matches!(early, Err(HandlerError::Retry(_))), "an order not stored yet may come");
    }

    #[test]
    fn payment_completes_an_open_order_only() {
        let store = with_order(OrderStatus::Created);
        let paid = PaymentCreated { id: "p1".into(), order_id: "o1".into(), stripe_id: "ch_1".into() };
        on_payment_created(&store, &paid).unwrap();
        assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, OrderStatus::Complete);
        on_payment_created(&store, &paid).unwrap(); // redelivery
        let store = with_order(OrderStatus::Cancelled);
        on_payment_created(&store, &paid).unwrap();
        assert_eq!(store::order(&store, "o1").unwrap().unwrap().status, OrderStatus::Cancelled);
    }
}
