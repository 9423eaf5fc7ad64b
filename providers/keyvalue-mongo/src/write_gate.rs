//! At most `writes_at_once` writes to a database at a time, where the server needs it.
//!
//! FerretDB on SQLite keeps each database in one SQLite file, which takes one writer at a
//! time: a second writer gets `SQLITE_BUSY` and sleeps in SQLite's busy handler (1, 2, 5
//! ... up to 100 ms a try) before trying again, so concurrent writes mostly wait for
//! nothing. Measured against our FerretDB (2026-11-27, pymongo, upserts by `_id`): one
//! writer, max 6 ms per write; two, max 180 ms; eight, p99 35 ms and max 732 ms, which was
//! the p99 of creating a ticket. With the link setting `writes_at_once = 1` the writes of
//! this process to that database queue here instead, in order, and SQLite never sleeps.
//! Our FerretDB queues each file's writers itself, holding only the SQL statements
//! (patches/ferretdb-v1.24.2-write-turns.patch), which serves more writes per second
//! than queueing whole round trips here; `./ticketing up` leaves the setting out. MongoDB
//! and FerretDB on PostgreSQL take concurrent writes: leave it unset there too.
//!
//! Reads are not gated: SQLite's write-ahead log lets them run beside the writer.

use std::collections::HashMap;
use std::future::IntoFuture;
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

/// Runs `action` (a driver's write, e.g. `collection.delete_one(..)`) when it is its
/// turn to write to `database`.
pub async fn write<W: IntoFuture>(database: &str, action: W) -> W::Output {
    let _turn = turn(database).await;
    action.await
}

/// Runs `action` when it is its turn to write to the database of `collection`.
pub async fn write_to<T: Send + Sync, W: IntoFuture>(collection: &mongodb::Collection<T>, action: W) -> W::Output {
    write(&collection.namespace().db, action).await
}

/// A turn to write to `database`, held until dropped (`None` when it has no limit).
async fn turn(database: &str) -> Option<OwnedSemaphorePermit> {
    let gate = gates().get(database).cloned()?;
    gate.acquire_owned().await.ok()
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
        assert!(tokio::time::timeout(Duration::from_millis(50), write("gated", async { 1 })).await.is_err(), "a write waits too");
        drop(first);
        assert!(tokio::time::timeout(Duration::from_millis(50), turn("gated")).await.unwrap().is_some());
        assert_eq!(write("gated", async { 2 }).await, 2);

        assert!(turn("free").await.is_none(), "no limit, no waiting");
        let _held = turn("gated").await;
        limit("gated", None);
        assert!(turn("gated").await.is_none(), "a limit can be lifted");
    }
}
