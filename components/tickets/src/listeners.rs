//! Event handlers of the tickets service. `Err` means "not handled": the message is
//! redelivered later (and dead-lettered after the last attempt).

use ticketing_common::events::{OrderCancelled, OrderCreated, Outbox};
use ticketing_common::store::KeyValue;

use crate::for_sale;
use crate::store::{self, Ticket};

pub type Handled = Result<(), String>;

/// Orders known to be cancelled. `order:created` and `order:cancelled` arrive on
/// consumers of their own, so a cancellation can be applied before its creation (or a
/// creation redelivered after its cancellation); without this a cancelled order could
/// reserve the ticket for good.
pub const CANCELLED_ORDERS: &str = "cancelled_orders";

/// `order:created`: the ticket is reserved by that order, unless it was cancelled already.
pub fn on_order_created(store: &impl KeyValue, outbox: &Outbox, event: &OrderCreated) -> Handled {
    if store.exists(CANCELLED_ORDERS, &event.id).map_err(storage)? {
        return Ok(());
    }
    let ticket = load(store, &event.ticket.id)?;
    match ticket.order_id.as_deref() {
        // A redelivery after we saved but before the ack: publish again, listeners drop
        // versions they already have.
        Some(order) if order == event.id => {
            for_sale::withdraw(store, &ticket.id).map_err(storage)?;
            outbox.push(&ticket.updated_event());
            Ok(())
        }
        Some(other) => Err(format!("ticket {} is already reserved by order {other}", ticket.id)),
        None => {
            let id = ticket.id.clone();
            save(store, outbox, Ticket { order_id: Some(event.id.clone()), version: ticket.version + 1, ..ticket })?;
            for_sale::withdraw(store, &id).map_err(storage)
        }
    }
}

/// `order:cancelled`: the ticket is released, but only if that order still holds it;
/// the order is remembered as cancelled first, so that its creation, if it comes later,
/// reserves nothing.
pub fn on_order_cancelled(store: &impl KeyValue, outbox: &Outbox, event: &OrderCancelled) -> Handled {
    store.set(CANCELLED_ORDERS, &event.id, b"1").map_err(storage)?;
    let ticket = load(store, &event.ticket.id)?;
    if ticket.order_id.as_deref() != Some(event.id.as_str()) {
        // Held by another order, or released already. The current state is announced
        // again in case the release was saved but its announcement failed; listeners
        // ignore versions they have. Likewise its entry in the index, if released.
        if ticket.order_id.is_none() {
            for_sale::add(store, &ticket.id).map_err(storage)?;
        }
        outbox.push(&ticket.updated_event());
        return Ok(());
    }
    let id = ticket.id.clone();
    save(store, outbox, Ticket { order_id: None, version: ticket.version + 1, ..ticket })?;
    for_sale::add(store, &id).map_err(storage)
}

fn storage(e: ticketing_common::store::StoreError) -> String {
    e.to_string()
}

fn load(store: &impl KeyValue, id: &str) -> Result<Ticket, String> {
    store::find(store, id).map_err(storage)?.ok_or_else(|| format!("Ticket not found: {id}"))
}

fn save(store: &impl KeyValue, outbox: &Outbox, next: Ticket) -> Handled {
    match store::save_next(store, &next).map_err(storage)? {
        Ok(()) => {
            outbox.push(&next.updated_event());
            Ok(())
        }
        Err(store::Conflict) => Err(format!("ticket {} changed meanwhile", next.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::events::{Event, OrderStatus, OrderTicket, TicketRef, TicketUpdated};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn setup() -> (MemoryStore, Outbox) {
        let store = MemoryStore::default();
        store::insert(&store, &Ticket { id: "t1".into(), title: "concert".into(), price: Cents(2000), user_id: "u1".into(), version: 0, order_id: None }).unwrap();
        (store, Outbox::default())
    }

    fn created(order: &str) -> OrderCreated {
        OrderCreated {
            id: order.into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u2".into(),
            expires_at: "2026-11-23T10:15:00.000Z".into(),
            ticket: OrderTicket { id: "t1".into(), price: Cents(2000) },
        }
    }

    fn cancelled(order: &str) -> OrderCancelled {
        OrderCancelled { id: order.into(), version: 1, ticket: TicketRef { id: "t1".into() } }
    }

    fn published(outbox: &Outbox) -> Vec<TicketUpdated> {
        outbox.take().into_iter().map(|(subject, bytes)| {
            assert_eq!(subject, "ticket:updated");
            TicketUpdated::from_bytes(&bytes).unwrap()
        }).collect()
    }

    #[test]
    fn case_32_to_34_order_created_reserves_and_publishes() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id.as_deref(), ticket.version), (Some("o1"), 1));
        let events = published(&outbox);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].order_id.as_deref(), events[0].version), (Some("o1"), 1));
    }

    #[test]
    fn a_duplicate_order_created_changes_nothing_but_republishes() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        outbox.take();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().version, 1);
        assert_eq!(published(&outbox)[0].version, 1);
    }

    #[test]
    fn a_cancellation_applied_before_its_creation_leaves_the_ticket_for_sale() {
        let (store, outbox) = setup();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id, None);
        outbox.take();
        on_order_created(&store, &outbox, &created("o2")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id.as_deref(), Some("o2"), "a later order reserves it");
    }

    #[test]
    fn a_creation_redelivered_after_its_cancellation_reserves_nothing() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        assert_eq!(store::find(&store, "t1").unwrap().unwrap().order_id, None);
    }

    #[test]
    fn a_second_order_for_a_reserved_ticket_is_refused() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        assert!(on_order_created(&store, &outbox, &created("o2")).is_err());
    }

    #[test]
    fn unknown_tickets_are_not_handled() {
        let store = MemoryStore::default();
        let outbox = Outbox::default();
        assert!(on_order_created(&store, &outbox, &created("o1")).unwrap_err().contains("Ticket not found"));
        assert!(on_order_cancelled(&store, &outbox, &cancelled("o1")).is_err());
    }

    #[test]
    fn case_35_order_cancelled_releases_and_publishes() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        outbox.take();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap();
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id, ticket.version), (None, 2));
        let events = published(&outbox);
        assert_eq!((events[0].order_id.clone(), events[0].version), (None, 2));
    }

    fn listed(store: &MemoryStore) -> bool {
        store.exists(for_sale::FOR_SALE, &for_sale::key_of("t1")).unwrap()
    }

    #[test]
    fn the_index_follows_reservations_and_releases_and_redeliveries_repair_it() {
        let (store, outbox) = setup();
        assert!(listed(&store));
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        assert!(!listed(&store), "reserved: off the index");
        for_sale::add(&store, "t1").unwrap(); // as if the withdrawal had failed after the save
        on_order_created(&store, &outbox, &created("o1")).unwrap(); // redelivered
        assert!(!listed(&store));
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap();
        assert!(listed(&store), "released: back on the index");
        store.delete(for_sale::FOR_SALE, &for_sale::key_of("t1")).unwrap(); // as if adding it had failed
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap(); // redelivered
        assert!(listed(&store));
        on_order_created(&store, &outbox, &created("o2")).unwrap();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap(); // a late duplicate
        assert!(!listed(&store), "still reserved by o2");
    }

    #[test]
    fn an_index_that_cannot_be_updated_gets_the_event_redelivered() {
        let (store, outbox) = setup();
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(on_order_created(&store, &outbox, &created("o1")).is_err());
    }

    #[test]
    fn cancelling_an_order_that_no_longer_holds_the_ticket_keeps_the_new_reservation() {
        let (store, outbox) = setup();
        on_order_created(&store, &outbox, &created("o1")).unwrap();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap();
        on_order_created(&store, &outbox, &created("o2")).unwrap();
        outbox.take();
        on_order_cancelled(&store, &outbox, &cancelled("o1")).unwrap(); // late duplicate of the first cancel
        let ticket = store::find(&store, "t1").unwrap().unwrap();
        assert_eq!((ticket.order_id.as_deref(), ticket.version), (Some("o2"), 3));
        let repeated = published(&outbox);
        assert_eq!((repeated[0].order_id.as_deref(), repeated[0].version), (Some("o2"), 3), "the current state, again");
    }
}
