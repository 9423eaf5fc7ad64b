//! The keys of a collection, sorted, in this process: what `list-keys` pages through.
//!
//! FerretDB v1 on SQLite answers `find({}).sort({_id: 1}).skip(n).limit(m)` by reading,
//! decoding and sorting the whole collection, so each page of a listing cost time in
//! proportion to the collection (50 ms for the first page of tickets for sale with a few
//! hundred listed). This provider is the only writer of its databases (one instance
//! serves at a time, see [`crate::lease`]), so it can keep the keys itself: a collection's keys
//! are read once, when it is first listed, and every write through this provider then
//! adds or removes its key. A write that fails (and so may or may not have landed) drops
//! the collection's index, and the next listing reads the keys again.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// One collection's keys: `None` until first listed (or after a failed write).
type Index = Arc<tokio::sync::Mutex<Option<BTreeSet<String>>>>;

fn indexes() -> &'static Mutex<HashMap<String, Index>> {
    static INDEXES: OnceLock<Mutex<HashMap<String, Index>>> = OnceLock::new();
    INDEXES.get_or_init(Default::default)
}

/// The index of `collection` in database `db`, shared by every link of this process.
pub fn of(db: &str, collection: &str) -> Index {
    let mut all = indexes().lock().expect("never poisoned: no panics inside");
    Arc::clone(all.entry(format!("{db}/{collection}")).or_default())
}

/// Forgets every index (read again at the next listing): on taking over from another
/// instance, whose writes this process did not see.
pub fn forget_all() {
    indexes().lock().expect("never poisoned: no panics inside").clear();
}

/// Keeps the index of a collection current after a write through this provider.
pub async fn written(index: &Index, keys: &[&str], outcome: Change) {
    let mut guard = index.lock().await;
    let Some(keys_now) = guard.as_mut() else { return }; // not listed yet: nothing to keep
    match outcome {
        Change::Stored => keys_now.extend(keys.iter().map(|k| k.to_string())),
        Change::Deleted => keys.iter().for_each(|k| {
            keys_now.remove(*k);
        }),
        Change::Unknown => *guard = None,
    }
}

/// What a write did to its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Stored,
    Deleted,
    /// The write failed: it may or may not have landed.
    Unknown,
}

/// One page of `keys` from `offset`, and the offset of the next page if there is one.
pub fn page(keys: &BTreeSet<String>, offset: u64, size: u64) -> (Vec<String>, Option<u64>) {
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let page: Vec<String> = keys.iter().skip(skip).take(size).cloned().collect();
    let next = (skip.saturating_add(page.len()) < keys.len()).then(|| offset + page.len() as u64);
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn pages_walk_the_keys_in_order() {
        let all = keys(&["c", "a", "d", "b", "e"]);
        assert_eq!(page(&all, 0, 2), (vec!["a".into(), "b".into()], Some(2)));
        assert_eq!(page(&all, 2, 2), (vec!["c".into(), "d".into()], Some(4)));
        assert_eq!(page(&all, 4, 2), (vec!["e".into()], None));
        assert_eq!(page(&all, 9, 2), (vec![], None));
    }

    #[tokio::test]
    async fn writes_keep_a_listed_index_current_and_a_failed_one_drops_it() {
        let index = of("db", "writes_keep");
        written(&index, &["x"], Change::Stored).await;
        assert!(index.lock().await.is_none(), "an index not listed yet is not made by writes");
        *index.lock().await = Some(keys(&["a"]));
        written(&index, &["b", "c"], Change::Stored).await;
        written(&index, &["a"], Change::Deleted).await;
        assert_eq!(index.lock().await.clone(), Some(keys(&["b", "c"])));
        written(&index, &["d"], Change::Unknown).await;
        assert!(index.lock().await.is_none(), "read again at the next listing");
        assert!(Arc::ptr_eq(&index, &of("db", "writes_keep")), "one index per collection in the process");
    }
}
