//! Orders and the service's replica of tickets, in the keyvalue store.
//!
//! **No double sale.** A ticket can be held by one live order at a time. Reservations of
//! a ticket are numbered by how often it was released (`ticket_releases/<ticket>`); an
//! order may be created only by the caller whose atomic increment of
//! `ticket_claims/<ticket>#<releases>` returns 1. Releasing (cancel, expiry) moves an
//! order to `cancelled` once, through a version claim, and only then counts a release,
//! which opens the next claim.
//!
//! **Announced with the change.** A new order is stored with its `order:created`, a
//! cancellation with its `order:cancelled`, in the same `set` (the transactional outbox,
//! see `ticketing_common::events::Announcement`).

use ticketing_common::events::{Announcement, OrderStatus};
pub use ticketing_common::store::Conflict;
use ticketing_common::lease::{self, Lease};
use ticketing_common::store::{JsonStore, KeyValue, StoreResult, ABANDONED_VERSION_MS};
use ticketing_common::time::Timestamp;

pub use crate::order::{Order, TicketReplica};

pub const TICKETS: &str = "tickets";
pub const ORDERS: &str = "orders";
pub const ORDER_VERSIONS: &str = "order_versions";
pub const TICKET_CLAIMS: &str = "ticket_claims";
pub const TICKET_RELEASES: &str = "ticket_releases";
/// Which order holds each reservation slot (`<ticket>#<releases>` → order id).
pub const CLAIM_HOLDERS: &str = "ticket_claim_holders";
pub const USER_ORDER_COUNT: &str = "user_order_count";
pub const USER_ORDERS: &str = "user_orders";

pub fn ticket(store: &impl KeyValue, id: &str) -> StoreResult<Option<TicketReplica>> {
    store.get_json(TICKETS, id)
}

/// Adds a ticket to the replica unless it is there already (in whatever version).
pub fn create_ticket(store: &impl KeyValue, ticket: &TicketReplica) -> StoreResult<()> {
    store.create_json(TICKETS, &ticket.id, ticket)
}

pub fn put_ticket(store: &impl KeyValue, ticket: &TicketReplica) -> StoreResult<()> {
    store.set_json(TICKETS, &ticket.id, ticket)
}

pub fn order(store: &impl KeyValue, id: &str) -> StoreResult<Option<Order>> {
    store.get_json(ORDERS, id)
}

/// Takes the ticket's current reservation slot (a [`lease`]) for order `order_id`; true
/// also when that order holds it already (an earlier attempt of the same request that
/// died half-way, see `idempotency`), false when another order holds it. A slot whose
/// holder never stored its order (it died between the two writes) is taken over once
/// it is [`ABANDONED_VERSION_MS`] old, so a ticket is never left reserved by nobody.
pub fn claim_ticket(store: &impl KeyValue, ticket_id: &str, order_id: &str, now: Timestamp) -> StoreResult<bool> {
    let releases = store.counter(TICKET_RELEASES, ticket_id)?;
    let slot = format!("{ticket_id}#{releases}");
    let generation = match lease::take(store, TICKET_CLAIMS, &slot, now)? {
        Lease::Won { generation } => generation,
        held @ Lease::Held { generation, .. } => {
            let holder = store.get(CLAIM_HOLDERS, &lease::generation_key(&slot, generation))?.map(|h| String::from_utf8_lossy(&h).into_owned());
            if holder.as_deref() == Some(order_id) {
                return Ok(true);
            }
            let holder_stored_nothing = match &holder {
                Some(holder) => order(store, holder)?.is_none(),
                None => true,
            };
            if !(held.held_longer_than(ABANDONED_VERSION_MS, now) && holder_stored_nothing) {
                return Ok(false);
            }
            match lease::take_over(store, TICKET_CLAIMS, &slot, generation, now)? {
                Lease::Won { generation } => generation,
                Lease::Held { .. } => return Ok(false),
            }
        }
    };
    store.set(CLAIM_HOLDERS, &lease::generation_key(&slot, generation), order_id.as_bytes())?;
    Ok(true)
}

/// Stores a new order (version 0) of `ticket` with its `order:created`.
pub fn insert_order(store: &impl KeyValue, order: &Order, ticket: &TicketReplica) -> StoreResult<()> {
    store.set_json_announcing(ORDERS, &order.id, order, &[Announcement::of(&order.created_event(ticket))])
}

/// Gives back a claim whose order could not be stored, so the ticket stays sellable.
pub fn release_claim(store: &impl KeyValue, ticket_id: &str) -> StoreResult<()> {
    store.increment(TICKET_RELEASES, ticket_id, 1).map(|_| ())
}

/// Adds an order to its user's list (`user_orders/<user>:<n>`, n from an atomic counter,
/// so the list of a user is numbered 1, 2, ... in creation order and read from the top).
pub fn index_for_user(store: &impl KeyValue, order: &Order) -> StoreResult<()> {
    let n = store.increment(USER_ORDER_COUNT, &order.user_id, 1)?;
    store.set(USER_ORDERS, &format!("{}:{n:010}", order.user_id), order.id.as_bytes())
}

/// Largest number a list cursor may name (the ten digits of the keys).
pub const MAX_ORDER_NUMBER: u64 = 9_999_999_999;

/// Parses a cursor of a user's list: the number of the next order to show.
pub fn parse_cursor(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (1..=MAX_ORDER_NUMBER).contains(n))
}

/// Up to `limit` of a user's orders, newest first, from number `from` down (the newest
/// when `None`), and the number the next page starts from. Reads the entries of just
/// this page: no scan, however many orders the user has. A number whose entry is
/// missing (its order failed to store) is skipped, so a page can be short.
pub fn orders_page(store: &impl KeyValue, user_id: &str, from: Option<u64>, limit: usize) -> StoreResult<(Vec<Order>, Option<u64>)> {
    let top = match from {
        Some(n) => n,
        None => store.counter(USER_ORDER_COUNT, user_id)?,
    };
    let bottom = top.saturating_sub(limit as u64);
    let keys: Vec<String> = (bottom + 1..=top).rev().map(|n| format!("{user_id}:{n:010}")).collect();
    let mut ids: Vec<String> = store
        .get_many(USER_ORDERS, &keys)?
        .into_iter()
        .flatten()
        .filter_map(|v| String::from_utf8(v).ok())
        .collect();
    // A request retried after it died half-way may have indexed its order twice.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let mut orders = Vec::with_capacity(ids.len());
    for bytes in store.get_many(ORDERS, &ids)?.into_iter().flatten() {
        orders.push(serde_json::from_slice(&bytes).map_err(|e| ticketing_common::store::StoreError(e.to_string()))?);
    }
    Ok((orders, (bottom > 0).then_some(bottom)))
}

/// Stores `next` (its version one above the stored one) unless another writer claimed
/// that version first. A move to `cancelled` is announced with it and releases the ticket.
pub fn save_next(store: &impl KeyValue, next: &Order) -> StoreResult<Result<(), Conflict>> {
    let events = match next.status {
        OrderStatus::Cancelled => vec![Announcement::of(&next.cancelled_event())],
        _ => Vec::new(),
    };
    if let Err(conflict) = store.save_version(ORDERS, ORDER_VERSIONS, &next.id, next.version, next, &events)? {
        return Ok(Err(conflict));
    }
    if next.status == OrderStatus::Cancelled {
        store.increment(TICKET_RELEASES, &next.ticket_id, 1)?;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::events::{OrderCancelled, OrderCreated};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn order(id: &str, status: OrderStatus, version: u64) -> Order {
        Order { id: id.into(), user_id: "u".into(), status, expires_at: ticketing_common::time::Timestamp::from_millis(0), ticket_id: "t1".into(), version }
    }

    fn ticket() -> TicketReplica {
        TicketReplica { id: "t1".into(), title: "concert".into(), price: Cents(2000), version: 0 }
    }

    #[test]
    fn one_claim_per_reservation_and_a_new_one_after_release() {
        let store = MemoryStore::default();
        assert!(claim_ticket(&store, "t1", "o1", Timestamp::now()).unwrap());
        assert!(!claim_ticket(&store, "t1", "o2", Timestamp::now()).unwrap(), "held");
        assert!(claim_ticket(&store, "t1", "o1", Timestamp::now()).unwrap(), "by o1: an attempt of o1 may go on");
        insert_order(&store, &order("o1", OrderStatus::Created, 0), &ticket()).unwrap();
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Cancelled, 1)).unwrap(), Ok(()));
        assert!(claim_ticket(&store, "t1", "o2", Timestamp::now()).unwrap(), "released once, claimable once");
        assert!(!claim_ticket(&store, "t1", "o3", Timestamp::now()).unwrap());
    }

    fn ids(orders: &[Order]) -> Vec<String> {
        orders.iter().map(|o| o.id.to_string()).collect()
    }

    #[test]
    fn a_users_orders_come_newest_first_a_page_at_a_time() {
        let store = MemoryStore::default();
        for i in 0..7 {
            let o = order(&format!("o{i}"), OrderStatus::Created, 0);
            insert_order(&store, &o, &ticket()).unwrap();
            index_for_user(&store, &o).unwrap();
            index_for_user(&store, &Order { user_id: "someone else".into(), ..o }).unwrap();
        }
        let (first, next) = orders_page(&store, "u", None, 3).unwrap();
        assert_eq!((ids(&first), next), (vec!["o6".to_string(), "o5".into(), "o4".into()], Some(4)));
        let (second, next) = orders_page(&store, "u", next, 3).unwrap();
        assert_eq!((ids(&second), next), (vec!["o3".to_string(), "o2".into(), "o1".into()], Some(1)));
        assert_eq!(orders_page(&store, "u", next, 3).unwrap(), (vec![order("o0", OrderStatus::Created, 0)], None));
        assert_eq!(orders_page(&store, "nobody", None, 3).unwrap(), (vec![], None));
        assert_eq!(ids(&orders_page(&store, "u", Some(99), 3).unwrap().0), Vec::<String>::new(), "beyond the top: nothing");
    }

    #[test]
    fn a_page_reads_only_its_own_entries() {
        let store = MemoryStore::default();
        for i in 0..500 {
            let o = order(&format!("o{i}"), OrderStatus::Created, 0);
            insert_order(&store, &o, &ticket()).unwrap();
            index_for_user(&store, &o).unwrap();
        }
        let before = store.calls();
        assert_eq!(orders_page(&store, "u", None, 20).unwrap().0.len(), 20);
        assert_eq!(store.calls() - before, 3, "the counter, the page's entries, its orders");
        store.delete(USER_ORDERS, &format!("u:{:010}", 500)).unwrap(); // the newest failed to store
        assert_eq!(ids(&orders_page(&store, "u", None, 2).unwrap().0), ["o498"], "a short page, not a wrong one");
    }

    #[test]
    fn cursors_are_positive_numbers_of_at_most_ten_digits() {
        assert_eq!(parse_cursor("42"), Some(42));
        assert_eq!(parse_cursor("9999999999"), Some(MAX_ORDER_NUMBER));
        for bad in ["", "0", "-1", "x", "1.5", "10000000000", "99999999999999999999999"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_slot_whose_holder_stored_no_order_is_taken_over_once_abandoned() {
        let store = MemoryStore::default();
        let now = Timestamp::now();
        assert!(claim_ticket(&store, "t1", "o1", now).unwrap(), "o1 claims, then dies before storing its order");
        assert!(!claim_ticket(&store, "t1", "o2", now).unwrap(), "o1 may still be storing it");
        lease::release(&store, TICKET_CLAIMS, "t1#0", 0).unwrap(); // long ago
        assert!(claim_ticket(&store, "t1", "o2", now).unwrap(), "abandoned: o2 takes it");
        assert!(!claim_ticket(&store, "t1", "o1", now).unwrap(), "o1 lost it");
        insert_order(&store, &order("o2", OrderStatus::Created, 0), &ticket()).unwrap();
        lease::release(&store, TICKET_CLAIMS, "t1#0", 1).unwrap();
        assert!(!claim_ticket(&store, "t1", "o3", now).unwrap(), "o2 stored its order: the slot is its own, however old");
    }

    #[test]
    fn an_order_is_cancelled_once_so_a_ticket_is_released_once() {
        let store = MemoryStore::default();
        assert!(claim_ticket(&store, "t1", "o1", Timestamp::now()).unwrap());
        insert_order(&store, &order("o1", OrderStatus::Created, 0), &ticket()).unwrap();
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Cancelled, 1)).unwrap(), Ok(()));
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Cancelled, 1)).unwrap(), Err(Conflict));
        assert_eq!(store.counter(TICKET_RELEASES, "t1").unwrap(), 1);
    }

    #[test]
    fn creations_and_cancellations_are_announced_with_the_change_and_nothing_else_is() {
        let store = MemoryStore::default();
        insert_order(&store, &order("o1", OrderStatus::Created, 0), &ticket()).unwrap();
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Complete, 1)).unwrap(), Ok(()));
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Cancelled, 2)).unwrap(), Ok(()));
        assert_eq!(save_next(&store, &order("o1", OrderStatus::Cancelled, 2)).unwrap(), Err(Conflict));
        let announced = store.take_announced();
        assert_eq!(announced.len(), 2);
        let created = announced[0].decode::<OrderCreated>().unwrap();
        assert_eq!((created.id.as_str(), created.ticket.price, created.version), ("o1", Cents(2000), 0));
        let cancelled = announced[1].decode::<OrderCancelled>().unwrap();
        assert_eq!((cancelled.id.as_str(), cancelled.version, cancelled.ticket.id.as_str()), ("o1", 2, "t1"));
    }
}
