//! Reading a bucket in key order from a given key on: the index buckets whose key order
//! is their listing order (tickets for sale, newest first) are read a page at a time.
//!
//! `wasi:keyvalue` lists keys only from a cursor, which our keyvalue-mongo provider makes
//! the offset of the first key (and [`crate::store::MemoryStore`] likewise). Offsets move
//! when keys are added or removed before them, so a [`Position`] keeps the last key read
//! together with its offset: the key decides where to go on, the offset is only a hint
//! that makes the usual case (nothing changed) one `list-keys` call. When keys before it
//! were removed, the scan steps back until it starts at or before the key; when keys
//! were added, it skips forward past it.

use crate::store::{KeyValue, StoreResult};

/// How far the first step back goes; it doubles with every further step.
const FIRST_STEP_BACK: u64 = 100;
/// Largest offset a position may name (a cursor comes from clients).
pub const MAX_OFFSET: u64 = 999_999_999_999;

/// Where a listing stopped: the last key read, and how many keys came up to and
/// including it (the offset of the key after it) when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub key: String,
}

impl Position {
    /// Reads `<offset>.<key>` (as `to_string` writes it); `None` when malformed or when
    /// `valid_key` refuses the key.
    pub fn parse(text: &str, valid_key: impl Fn(&str) -> bool) -> Option<Position> {
        let (offset, key) = text.split_once('.')?;
        if offset.is_empty() || offset.len() > 12 || !offset.bytes().all(|b| b.is_ascii_digit()) || !valid_key(key) {
            return None;
        }
        let offset = offset.parse().ok().filter(|&o| o <= MAX_OFFSET)?;
        Some(Position { offset, key: key.to_string() })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.offset, self.key)
    }
}

/// Keys read by [`keys_after`]: the first of them is at `offset`; `more` when the bucket
/// has keys after the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub keys: Vec<String>,
    pub offset: u64,
    pub more: bool,
}

impl Batch {
    /// The position of `keys[i]`, to go on after it.
    pub fn position(&self, i: usize) -> Position {
        Position { offset: self.offset + i as u64 + 1, key: self.keys[i].clone() }
    }
}

/// The keys of `bucket` that sort after `after` (from the first key when `None`), in key
/// order: at most one `list-keys` page, usually read in one call. An empty batch is the end.
pub fn keys_after(store: &(impl KeyValue + ?Sized), bucket: &str, after: Option<&Position>) -> StoreResult<Batch> {
    let Some(after) = after else {
        let page = store.list_keys_page(bucket, None)?;
        return Ok(Batch { more: page.cursor.is_some(), keys: page.keys, offset: 0 });
    };
    let at = |start: u64| store.list_keys_page(bucket, (start > 0).then_some(start));
    let is_read = |key: &String| key.as_str() <= after.key.as_str();

    // Find a page that starts at or before the keys after `after`: every one of them is
    // then at or beyond its start. Unchanged, the page at `after`'s own offset does.
    let (mut start, mut step) = (after.offset.min(MAX_OFFSET).saturating_sub(1), FIRST_STEP_BACK);
    let mut page = loop {
        let page = at(start)?;
        if start == 0 || page.keys.first().is_some_and(is_read) {
            break page;
        }
        start = start.saturating_sub(step);
        step = step.saturating_mul(2);
    };
    // Skip what was read already, page by page if keys were added before `after`.
    loop {
        let skip = page.keys.partition_point(is_read);
        match page.cursor {
            Some(next) if skip == page.keys.len() => {
                start = next;
                page = at(start)?;
            }
            cursor => return Ok(Batch { keys: page.keys.split_off(skip), offset: start + skip as u64, more: cursor.is_some() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn store_with(keys: impl IntoIterator<Item = String>) -> MemoryStore {
        let store = MemoryStore::with_page_size(3);
        for key in keys {
            store.set("b", &key, b"").unwrap();
        }
        store
    }

    fn key(n: u32) -> String {
        format!("k{n:03}")
    }

    /// Every key after `from`, batch by batch, as a listing reads them.
    fn walk(store: &MemoryStore, from: Option<Position>) -> Vec<String> {
        let (mut seen, mut after) = (Vec::new(), from);
        loop {
            let batch = keys_after(store, "b", after.as_ref()).unwrap();
            if batch.keys.is_empty() {
                assert!(!batch.more);
                return seen;
            }
            after = Some(batch.position(batch.keys.len() - 1));
            seen.extend(batch.keys);
        }
    }

    #[test]
    fn reads_every_key_once_in_order_one_call_per_batch() {
        let store = store_with((0..10).map(key));
        let first = keys_after(&store, "b", None).unwrap();
        assert_eq!(first, Batch { keys: vec![key(0), key(1), key(2)], offset: 0, more: true });
        let calls = store.calls();
        let second = keys_after(&store, "b", Some(&first.position(2))).unwrap();
        assert_eq!((second.keys, second.offset, store.calls() - calls), (vec![key(3), key(4)], 3, 1), "one call, from the last key read");
        assert_eq!(walk(&store, None), (0..10).map(key).collect::<Vec<_>>());
        assert!(keys_after(&MemoryStore::default(), "none", None).unwrap().keys.is_empty());
    }

    #[test]
    fn goes_on_after_the_key_when_keys_before_it_were_added() {
        let store = store_with((10..20).map(key));
        let after = Position { offset: 4, key: key(13) };
        for n in 0..8 {
            store.set("b", &key(n), b"").unwrap(); // more than two pages, all before k013
        }
        assert_eq!(walk(&store, Some(after)), (14..20).map(key).collect::<Vec<_>>());
    }

    #[test]
    fn misses_nothing_when_keys_before_it_were_removed() {
        let store = store_with((0..400).map(key));
        let after = Position { offset: 351, key: key(350) };
        for n in 0..300 {
            store.delete("b", &key(n)).unwrap();
        }
        assert_eq!(walk(&store, Some(after.clone())), (351..400).map(key).collect::<Vec<_>>());
        store.delete("b", &key(350)).unwrap();
        assert_eq!(walk(&store, Some(after)), (351..400).map(key).collect::<Vec<_>>(), "the last key read may be gone too");
    }

    #[test]
    fn the_offset_is_only_a_hint() {
        let store = store_with((0..50).map(key));
        for offset in [0, 1, 20, 49, 50, 51, 10_000, MAX_OFFSET] {
            assert_eq!(walk(&store, Some(Position { offset, key: key(30) })), (31..50).map(key).collect::<Vec<_>>(), "offset {offset}");
        }
        assert!(walk(&store, Some(Position { offset: 3, key: key(60) })).is_empty());
    }

    #[test]
    fn positions_read_what_they_write_and_refuse_the_rest() {
        let p = Position { offset: 42, key: "abc".into() };
        assert_eq!(Position::parse(&p.to_string(), |k| k == "abc"), Some(p));
        for bad in ["", "42", ".abc", "42.", "x.abc", "-1.abc", "1e3.abc", "1000000000000.abc", "42.abd", " 42.abc"] {
            assert_eq!(Position::parse(bad, |k| k == "abc"), None, "{bad}");
        }
    }
}
