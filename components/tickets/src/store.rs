//! Tickets in the keyvalue store.
//!
//! Every change of a ticket moves it from version v to v+1 through
//! [`JsonStore::save_version`] (claims in bucket `ticket_versions`), so a concurrent edit
//! and reservation of one ticket can never overwrite each other. Each write carries the
//! event announcing it (`ticket:created`, `ticket:updated`) in the same `set`, so a
//! stored change is always announced (see `ticketing_common::events::Announcement`).

use ticketing_common::events::Announcement;
pub use ticketing_common::store::Conflict;
use ticketing_common::store::{JsonStore, KeyValue, StoreResult};

pub use crate::ticket::Ticket;

pub const TICKETS: &str = "tickets";
pub const VERSION_CLAIMS: &str = "ticket_versions";

pub fn find(store: &impl KeyValue, id: &str) -> StoreResult<Option<Ticket>> {
    store.get_json(TICKETS, id)
}

/// Stores a new ticket (version 0) with its `ticket:created`, listed for sale first: an
/// entry whose ticket is missing is skipped, a ticket without its entry would never be
/// listed. A ticket already stored under its id stays as it is (and is not announced
/// again).
pub fn insert(store: &impl KeyValue, ticket: &Ticket) -> StoreResult<()> {
    if ticket.order_id.is_none() {
        crate::for_sale::add(store, &ticket.id)?;
    }
    store.create_json_announcing(TICKETS, &ticket.id, ticket, &[Announcement::of(&ticket.created_event())])
}

/// Stores `next`, which must be `current` with its version bumped by one, with its
/// `ticket:updated`, unless another writer already claimed that version.
pub fn save_next(store: &impl KeyValue, next: &Ticket) -> StoreResult<Result<(), Conflict>> {
    store.save_version(TICKETS, VERSION_CLAIMS, &next.id, next.version, next, &[Announcement::of(&next.updated_event())])
}

/// Every ticket, in id (= creation time) order: reads them all, for tests.
pub fn all(store: &impl KeyValue) -> StoreResult<Vec<Ticket>> {
    let keys = store.list_keys(TICKETS)?;
    let values = store.get_many(TICKETS, &keys)?;
    let mut tickets = Vec::with_capacity(values.len());
    for bytes in values.into_iter().flatten() {
        match serde_json::from_slice::<Ticket>(&bytes) {
            Ok(t) => tickets.push(t),
            Err(e) => return Err(ticketing_common::store::StoreError(format!("bad ticket record: {e}"))),
        }
    }
    Ok(tickets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::events::{TicketCreated, TicketUpdated};
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;

    fn ticket(version: u64) -> Ticket {
        Ticket { id: "t1".into(), title: "concert".into(), price: Cents(2000), user_id: "u1".into(), version, order_id: None }
    }

    #[test]
    fn only_one_writer_gets_each_version() {
        let store = MemoryStore::default();
        insert(&store, &ticket(0)).unwrap();
        let edit = Ticket { title: "edited".into(), ..ticket(1) };
        let reserve = Ticket { order_id: Some("o1".into()), ..ticket(1) };
        assert_eq!(save_next(&store, &reserve).unwrap(), Ok(()));
        assert_eq!(save_next(&store, &edit).unwrap(), Err(Conflict));
        assert_eq!(find(&store, "t1").unwrap(), Some(reserve.clone()));
        let announced = store.take_announced();
        assert_eq!(announced.len(), 2, "the creation and the one change that was stored");
        assert_eq!(announced[0].decode::<TicketCreated>().unwrap(), ticket(0).created_event());
        assert_eq!(announced[1].decode::<TicketUpdated>().unwrap(), reserve.updated_event());
    }

    #[test]
    fn lists_every_ticket() {
        let store = MemoryStore::default();
        insert(&store, &ticket(0)).unwrap();
        insert(&store, &Ticket { id: "t2".into(), ..ticket(0) }).unwrap();
        assert_eq!(all(&store).unwrap().len(), 2);
    }
}
