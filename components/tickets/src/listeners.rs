//! Event handlers of the tickets service. An error says whether the event may succeed
//! later (retried, dead-lettered after the last attempt) or never (dead-lettered at once).

use ticketing_common::events::{decode_and, unknown_subject, Event, HandlerError, Handled, OrderCancelled, OrderCreated};
use ticketing_common::store::KeyValue;

use crate::for_sale;
use crate::store::{self, Ticket};
use crate::ticket::Reservation;

/// Orders known to be cancelled. `order:created` and `order:cancelled` arrive on
/// consumers of their own, so a cancellation can be applied before its creation (or a
/// creation redelivered after its cancellation); without this a cancelled order could
/// reserve the ticket for good.
pub const CANCELLED_ORDERS: &str = "cancelled_orders";

/// Runs the handler of `subject` on the event in `body`.
pub fn dispatch(store: &impl KeyValue, subject: &str, body: &[u8]) -> Handled {
    match subject {
        OrderCreated::SUBJECT => decode_and(body, |e| on_order_created(store, e)),
        OrderCancelled::SUBJECT => decode_and(body, |e| on_order_cancelled(store, e)),
        other => unknown_subject(other),
    }
}

/// `order:created`: the ticket is reserved by that order, unless it was cancelled already.
pub fn on_order_created(store: &impl KeyValue, event: &OrderCreated) -> Handled {
    if store.exists(CANCELLED_ORDERS, &event.id)? {
        return Ok(());
    }
    let id = event.ticket.id.as_str();
    match load(store, id)?.reserve(&event.id) {
        Reservation::Reserve(next) => save(store, next)?,
        // A redelivery after we saved but before the ack: the reservation and its
        // announcement were stored together; only the index may be behind.
        Reservation::AlreadyHeld => {}
        Reservation::HeldByOther(other) => {
            return Err(HandlerError::retry(format!("ticket {id} is already reserved by order {other}")));
        }
    }
    Ok(for_sale::withdraw(store, id)?)
}

/// `order:cancelled`: the ticket is released, but only if that order still holds it;
/// the order is remembered as cancelled first, so that its creation, if it comes later,
/// reserves nothing.
pub fn on_order_cancelled(store: &impl KeyValue, event: &OrderCancelled) -> Handled {
    store.set(CANCELLED_ORDERS, &event.id, b"1")?;
    let ticket = load(store, &event.ticket.id)?;
    let (id, for_sale) = (ticket.id.clone(), ticket.is_for_sale());
    match ticket.release(&event.id) {
        Some(next) => save(store, next)?,
        // Released already (a redelivery): the release and its announcement were stored
        // together; only the index may be behind.
        None if for_sale => {}
        // Held by another order: it stays off the list.
        None => return Ok(()),
    }
    Ok(for_sale::add(store, &id)?)
}

fn load(store: &impl KeyValue, id: &str) -> Result<Ticket, HandlerError> {
    store::find(store, id)?.ok_or_else(|| HandlerError::retry(format!("Ticket not found: {id}")))
}

/// Stores the ticket's next version (announced with it); losing the race to another
/// change is "not handled yet", so the event is retried against the new state.
fn save(store: &impl KeyValue, next: Ticket) -> Handled {
    match store::save_next(store, &next)? {
        Ok(()) => Ok(()),
        Err(store::Conflict) => Err(HandlerError::retry(format!("ticket {} changed meanwhile", next.id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::events::{OrderStatus, OrderTicket, TicketRef, TicketUpdated};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn setup() -> MemoryStore {
        let store = MemoryStore::default();
        store::insert(&store, &Ticket { id: "t1".into(), title: "concert".into(), price: Cents(2000), user_id: "u1".into(), version: 0, order_id: None }).unwrap();
        assert_eq!(store.take_announced_subjects(), ["ticket:created"]);
        store
    }

    fn created(order: &str) -> OrderCreated {
        OrderCreated {
            id: order.into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u2".into(),
            expires_at: ticketing_common::time::Timestamp::from_millis(1_795_428_900_000),
            ticket: OrderTicket { id: "t1".into(), price: Cents(2000) },
        }
    }

    fn cancelled(order: &str) -> OrderCancelled {
        OrderCancelled { id: order.into(), version: 1, ticket: TicketRef { id: "t1".into() } }
    }

    /// The `ticket:updated` events stored since the last call.
    fn published(store: &MemoryStore) -> Vec<TicketUpdated> {
        store.take_announced().iter().map(|a| a.decode::<TicketUpdated>().unwrap()).collect()
    }

    #[test]
    fn case_32_to_34_order_created_reserves_and_publishes() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id.as_deref(), ticket.version), (Some("o1"), 1));
        let events = published(&store);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].order_id.as_deref(), events[0].version), (Some("o1"), 1));
    }

    #[test]
    fn a_duplicate_order_created_changes_nothing() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        store.take_announced();
        on_order_created(&store, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().version, 1);
        assert!(published(&store).is_empty(), "announced once, with the change");
    }

    #[test]
    fn a_cancellation_applied_before_its_creation_leaves_the_ticket_for_sale() {
        let store = setup();
        on_order_cancelled(&store, &cancelled("o1")).unwrap();
        on_order_created(&store, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id, None);
        store.take_announced();
        on_order_created(&store, &created("o2")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id.as_deref(), Some("o2"), "a later order reserves it");
    }

    #[test]
    fn a_creation_redelivered_after_its_cancellation_reserves_nothing() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        on_order_cancelled(&store, &cancelled("o1")).unwrap();
        on_order_created(&store, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id, None);
    }

    #[test]
    fn events_are_dispatched_by_subject_and_bad_ones_rejected_at_once() {
        let store = setup();
        dispatch(&store, "order:created", &created("o1").to_bytes()).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id.as_deref(), Some("o1"));
        assert!(matches!(dispatch(&store, "order:created", b"{\"id\": 1}"), Err(HandlerError::Reject(_))), "never decodes");
        assert!(matches!(dispatch(&store, "ticket:created", b"{}"), Err(HandlerError::Reject(_))), "not ours");
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(dispatch(&store, "order:cancelled", &cancelled("o1").to_bytes()), Err(HandlerError::Retry(_))), "an outage passes");
    }

    #[test]
    fn a_second_order_for_a_reserved_ticket_is_refused() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        assert!(on_order_created(&store, &created("o2")).is_err());
    }

    #[test]
    fn unknown_tickets_are_not_handled() {
        let store = MemoryStore::default();
        assert!(on_order_created(&store, &created("o1")).unwrap_err().to_string().contains("Ticket not found"));
        assert!(on_order_cancelled(&store, &cancelled("o1")).is_err());
    }

    #[test]
    fn case_35_order_cancelled_releases_and_publishes() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        store.take_announced();
        on_order_cancelled(&store, &cancelled("o1")).unwrap();
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id, ticket.version), (None, 2));
        let events = published(&store);
        assert_eq!((events[0].order_id.clone(), events[0].version), (None, 2));
    }

    fn listed(store: &MemoryStore) -> bool {
        store.exists(for_sale::FOR_SALE, &for_sale::key_of("t1")).unwrap()
    }

    #[test]
    fn the_index_follows_reservations_and_releases_and_redeliveries_repair_it() {
        let store = setup();
        assert!(listed(&store));
        on_order_created(&store, &created("o1")).unwrap();
        assert!(!listed(&store), "reserved: off the index");
        for_sale::add(&store, "t1").unwrap(); // as if the withdrawal had failed after the save
        on_order_created(&store, &created("o1")).unwrap(); // redelivered
        assert!(!listed(&store));
        on_order_cancelled(&store, &cancelled("o1")).unwrap();
        assert!(listed(&store), "released: back on the index");
        store.delete(for_sale::FOR_SALE, &for_sale::key_of("t1")).unwrap(); // as if adding it had failed
        on_order_cancelled(&store, &cancelled("o1")).unwrap(); // redelivered
        assert!(listed(&store));
        on_order_created(&store, &created("o2")).unwrap();
        on_order_cancelled(&store, &cancelled("o1")).unwrap(); // a late duplicate
        assert!(!listed(&store), "still reserved by o2");
    }

    #[test]
    fn an_index_that_cannot_be_updated_gets_the_event_redelivered() {
        let store = setup();
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(on_order_created(&store, &created("o1")).is_err());
    }

    #[test]
    fn cancelling_an_order_that_no_longer_holds_the_ticket_keeps_the_new_reservation() {
        let store = setup();
        on_order_created(&store, &created("o1")).unwrap();
        on_order_cancelled(&store, &cancelled("o1")).unwrap();
        on_order_created(&store, &created("o2")).unwrap();
        store.take_announced();
        on_order_cancelled(&store, &cancelled("o1")).unwrap(); // late duplicate of the first cancel
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id.as_deref(), ticket.version), (Some("o2"), 3));
        assert!(published(&store).is_empty(), "nothing changed, nothing announced");
    }
}
