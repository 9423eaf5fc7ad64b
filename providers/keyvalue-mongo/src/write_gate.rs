//! At most `writes_at_once` writes to a database at a time, where the server needs it.
//!
//! FerretDB on SQLite keeps each database in one SQLite file, which takes one writer at a
//! time: a second writer gets `SQLITE_BUSY` and sleeps in SQLite's busy handler (1, 2, 5
//! ... up to 100 ms a try) before trying again, so concurrent writes mostly wait for
//! nothing. Measured against our FerretDB (2026-11-27, pymongo, upserts by `_id`): one
//! writer, max 6 ms per write; two, max 180 ms; eight, p99 35 ms and max 732 ms, which was
//! the p99 of creating a ticket. With the link setting `writes_at_once = 1` the writes of
//! this process to that database queue here instead, in order, and SQLite never sleeps.
//! MongoDB and FerretDB on PostgreSQL take concurrent writes: leave it unset there.
//!
//! Reads are not gated: SQLite's write-ahead log lets them run beside the writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

fn gates() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Semaphore>>> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    GATES.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Limits the writes to `database` to `writes_at_once` at a time from now on (`None`:
/// no limit). Writes that already hold a turn finish undisturbed.
pub fn limit(database: &str, writes_at_once: Option<usize>) {
    let mut gates = gates();
    match writes_at_once {
        Some(n) => {
            gates.insert(database.to_string(), Arc::new(Semaphore::new(n.max(1))));
        }
        None => {
            gates.remove(database);
        }
    }
}

/// A turn to write to `database`, held until dropped (`None` when it has no limit).
pub async fn turn(database: &str) -> Option<OwnedSemaphorePermit> {
    let gate = gates().get(database).cloned()?;
    gate.acquire_owned().await.ok()
}

/// A turn to write to the database of `collection`.
pub async fn turn_for<T: Send + Sync>(collection: &mongodb::Collection<T>) -> Option<OwnedSemaphorePermit> {
    turn(&collection.namespace().db).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn writes_take_turns_only_where_limited() {
        limit("gated", Some(1));
        let first = turn("gated").await;
        assert!(first.is_some());
        assert!(tokio::time::timeout(Duration::from_millis(50), turn("gated")).await.is_err(), "the second waits");
        drop(first);
        assert!(tokio::time::timeout(Duration::from_millis(50), turn("gated")).await.unwrap().is_some());

        assert!(turn("free").await.is_none(), "no limit, no waiting");
        let _held = turn("gated").await;
        limit("gated", None);
        assert!(turn("gated").await.is_none(), "a limit can be lifted");
    }
}
