//! The index of tickets for sale (bucket `tickets_for_sale`), so that the list reads one
//! page of keys and those tickets instead of every ticket ever made.
//!
//! An entry's key is the ticket's id with every hex digit complemented (`f` - digit): keys
//! ascend as ids descend, and ids begin with their creation time, so `list-keys` order
//! is newest first. The key follows from the id alone, so every handler can add or
//! remove an entry, idempotently. An entry is added before its ticket is stored (a new
//! ticket), removed when an order reserves it, added back when the order is cancelled.
//! The list reads the tickets of the entries and shows only unreserved ones, so an
//! entry left over by a race is never shown; what must not happen is a ticket for sale
//! without its entry, and the handlers' order of writes sees to that.
//!
//! Tickets stored before the index existed are added once: the first page looks for the
//! [`BACKFILLED`] marker, which sorts before every entry (so it costs no extra call),
//! and when it is missing adds every unreserved ticket first.

use ticketing_common::ids::is_valid_id;
use ticketing_common::listing::{keys_after, Position};
use ticketing_common::store::{KeyValue, StoreError, StoreResult};

use crate::store::{self, Ticket, TICKETS};

pub const FOR_SALE: &str = "tickets_for_sale";
/// Present once the tickets stored before the index were added; sorts before every entry.
pub const BACKFILLED: &str = "!backfilled";

/// The complement of a hex id, digit by digit (its own inverse).
fn complement(hex: &str) -> String {
    hex.chars().map(|c| c.to_digit(16).and_then(|d| char::from_digit(15 - d, 16)).unwrap_or(c)).collect()
}

/// The index key of ticket `id`.
pub fn key_of(id: &str) -> String {
    complement(id)
}

/// The ticket id of an index key (`None` for the marker).
fn id_of(key: &str) -> Option<String> {
    is_valid_id(key).then(|| complement(key))
}

/// Parses a cursor that this module wrote (`Position` over an index key).
pub fn parse_cursor(text: &str) -> Option<Position> {
    Position::parse(text, is_valid_id)
}

/// Puts ticket `id` up for sale (again); repeating it changes nothing.
pub fn add(store: &impl KeyValue, id: &str) -> StoreResult<()> {
    store.set(FOR_SALE, &key_of(id), id.as_bytes())
}

/// Takes a reserved ticket off the index. A release of it that ran meanwhile may have
/// added its entry just before this delete, so the ticket is read again afterwards and
/// put back if it is for sale.
pub fn withdraw(store: &impl KeyValue, id: &str) -> StoreResult<()> {
    store.delete(FOR_SALE, &key_of(id))?;
    match store::find(store, id)? {
        Some(ticket) if ticket.order_id.is_none() => add(store, id),
        _ => Ok(()),
    }
}

/// Up to `limit` tickets for sale after `after` (from the newest when `None`), newest
/// first, and where the next page starts when there may be one.
pub fn page(store: &impl KeyValue, after: Option<&Position>, limit: usize) -> StoreResult<(Vec<Ticket>, Option<Position>)> {
    let mut batch = keys_after(store, FOR_SALE, after)?;
    if after.is_none() && batch.keys.first().map(String::as_str) != Some(BACKFILLED) {
        backfill(store)?;
        batch = keys_after(store, FOR_SALE, None)?;
    }
    let mut found = Vec::new();
    let mut last = after.cloned();
    loop {
        let mut entries = (0..batch.keys.len()).filter_map(|i| Some((batch.position(i), id_of(&batch.keys[i])?)));
        while found.len() < limit {
            let chunk: Vec<(Position, String)> = entries.by_ref().take(limit - found.len()).collect();
            let Some((end, _)) = chunk.last() else { break };
            last = Some(end.clone());
            let ids: Vec<String> = chunk.into_iter().map(|(_, id)| id).collect();
            found.extend(tickets(store, &ids)?.into_iter().filter(|t| t.order_id.is_none()));
        }
        let more = entries.next().is_some() || batch.more;
        if found.len() == limit || !more {
            return Ok((found, if more { last } else { None }));
        }
        // Short of a page (reserved or missing tickets): go on after this whole batch.
        last = Some(batch.position(batch.keys.len() - 1));
        batch = keys_after(store, FOR_SALE, last.as_ref())?;
    }
}

/// The tickets of `ids` that exist (an entry is written before its ticket).
fn tickets(store: &impl KeyValue, ids: &[String]) -> StoreResult<Vec<Ticket>> {
    let values = store.get_many(TICKETS, ids)?;
    values
        .into_iter()
        .flatten()
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| StoreError(format!("bad ticket record: {e}"))))
        .collect()
}

/// Adds every unreserved ticket, a page of tickets at a time, then the marker. Run
/// twice at once, both write the same entries.
fn backfill(store: &impl KeyValue) -> StoreResult<()> {
    let mut cursor = None;
    loop {
        let page = store.list_keys_page(TICKETS, cursor)?;
        let entries: Vec<(String, Vec<u8>)> = tickets(store, &page.keys)?
            .into_iter()
            .filter(|t| t.order_id.is_none())
            .map(|t| (key_of(&t.id), t.id.as_bytes().to_vec()))
            .collect();
        store.set_many(FOR_SALE, &entries)?;
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return store.set(FOR_SALE, BACKFILLED, b"1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::ids::id_at;
    use ticketing_common::money::Cents;
    use ticketing_common::store::{JsonStore, MemoryStore};

    const T0: u64 = 1_795_428_900_000;

    /// Ticket `n` of a test, made `n` milliseconds after T0 (so a higher `n` is newer).
    fn ticket(n: u64) -> Ticket {
        Ticket { id: id_at(T0 + n, [7; 6]).into(), title: format!("t{n}"), price: Cents(100), user_id: "u1".into(), version: 0, order_id: None }
    }

    fn titles(tickets: &[Ticket]) -> Vec<String> {
        tickets.iter().map(|t| t.title.clone()).collect()
    }

    fn names(ns: impl IntoIterator<Item = u64>) -> Vec<String> {
        ns.into_iter().map(|n| format!("t{n}")).collect()
    }

    /// Every page of `limit`, as a client walks them.
    fn walk(store: &MemoryStore, limit: usize) -> Vec<Vec<String>> {
        let (mut pages, mut after) = (Vec::new(), None);
        loop {
            let (tickets, next) = page(store, after.as_ref(), limit).unwrap();
            pages.push(titles(&tickets));
            match next {
                Some(next) => after = Some(parse_cursor(&next.to_string()).expect("cursors parse back")),
                None => return pages,
            }
        }
    }

    fn reserve(store: &MemoryStore, n: u64) {
        store.set_json(TICKETS, &ticket(n).id, &Ticket { order_id: Some("o1".into()), ..ticket(n) }).unwrap();
        withdraw(store, &ticket(n).id).unwrap();
    }

    #[test]
    fn keys_reverse_the_id_order() {
        let (old, new) = (ticket(1).id, ticket(2).id);
        assert!(key_of(&new) < key_of(&old));
        assert!(BACKFILLED < key_of("ffffffffffffffffffffffff").as_str());
        assert_eq!(id_of(&key_of(&old)), Some(old.to_string()));
        assert_eq!(id_of(BACKFILLED), None);
    }

    #[test]
    fn pages_are_newest_first_each_ticket_once_and_reserved_ones_absent() {
        let store = MemoryStore::with_page_size(4);
        for n in 0..23 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        reserve(&store, 20);
        reserve(&store, 5);
        let pages = walk(&store, 5);
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 5, 5, 1]);
        let expected: Vec<u64> = (0..23).rev().filter(|n| ![20, 5].contains(n)).collect();
        assert_eq!(pages.concat(), names(expected));
    }

    #[test]
    fn a_released_ticket_comes_back_in_its_place() {
        let store = MemoryStore::default();
        for n in 0..3 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        reserve(&store, 1);
        assert_eq!(walk(&store, 10).concat(), names([2, 0]));
        store.set_json(TICKETS, &ticket(1).id, &ticket(1)).unwrap(); // released
        add(&store, &ticket(1).id).unwrap();
        add(&store, &ticket(1).id).unwrap(); // a redelivery
        assert_eq!(walk(&store, 10).concat(), names([2, 1, 0]));
    }

    #[test]
    fn a_release_that_ran_before_the_withdrawal_keeps_its_entry() {
        let store = MemoryStore::default();
        store::insert(&store, &ticket(1)).unwrap();
        withdraw(&store, &ticket(1).id).unwrap(); // reserved, then released before this ran
        assert_eq!(walk(&store, 10).concat(), names([1]));
    }

    #[test]
    fn the_next_page_goes_on_after_new_and_withdrawn_tickets() {
        let store = MemoryStore::with_page_size(3);
        for n in 0..10 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        let (first, next) = page(&store, None, 4).unwrap();
        assert_eq!(titles(&first), names([9, 8, 7, 6]));
        for n in 10..17 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        reserve(&store, 9);
        reserve(&store, 5);
        let (second, _) = page(&store, next.as_ref(), 4).unwrap();
        assert_eq!(titles(&second), names([4, 3, 2, 1]));
    }

    #[test]
    fn the_first_page_reads_one_page_of_keys_and_its_tickets() {
        let store = MemoryStore::default();
        for n in 0..3000 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        page(&store, None, 20).unwrap(); // the backfill check is done once
        let before = store.calls();
        let (tickets, next) = page(&store, None, 20).unwrap();
        assert_eq!((tickets.len(), store.calls() - before), (20, 2), "one list-keys, one get-many");
        let before = store.calls();
        page(&store, next.as_ref(), 20).unwrap();
        assert_eq!(store.calls() - before, 2);
    }

    #[test]
    fn tickets_stored_before_the_index_are_added_once() {
        let store = MemoryStore::with_page_size(2);
        for n in 0..5 {
            store.set_json(TICKETS, &ticket(n).id, &ticket(n)).unwrap(); // no entries
        }
        store.set_json(TICKETS, &ticket(5).id, &Ticket { order_id: Some("o1".into()), ..ticket(5) }).unwrap();
        store::insert(&store, &ticket(6)).unwrap(); // made after the upgrade, before any list
        assert_eq!(walk(&store, 3).concat(), names([6, 4, 3, 2, 1, 0]));
        assert!(store.exists(FOR_SALE, BACKFILLED).unwrap());
        assert!(!store.exists(FOR_SALE, &key_of(&ticket(5).id)).unwrap(), "reserved ones are not added");
        store.delete(TICKETS, &ticket(0).id).unwrap();
        store.set_json(TICKETS, &ticket(7).id, &ticket(7)).unwrap(); // not through the index
        assert_eq!(walk(&store, 10).concat(), names([6, 4, 3, 2, 1]), "no second backfill");
    }

    #[test]
    fn pages_fill_up_across_batches_of_keys() {
        let store = MemoryStore::with_page_size(1);
        for n in 0..6 {
            store::insert(&store, &ticket(n)).unwrap();
        }
        reserve(&store, 4);
        assert_eq!(walk(&store, 4), [names([5, 3, 2, 1]), names([0])]);
    }

    #[test]
    fn an_outage_is_an_error_not_an_empty_list() {
        let store = MemoryStore::default();
        store::insert(&store, &ticket(1)).unwrap();
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(page(&store, None, 5).is_err());
    }
}
