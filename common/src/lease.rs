//! Claims that a failed holder cannot keep for ever.
//!
//! [`JsonStore::claim`] gives a key to exactly one caller; but a holder that fails before
//! finishing its work (a store outage between two writes, a crash) would keep the key
//! for good, and everyone after it would wait for a result that never comes. A lease is
//! such a claim with a time and a way out:
//!
//! - it is numbered by generation: the plain key, then `key#1`, `key#2`, ... (so a claim
//!   made before leases existed is generation 0), each one claimed by an atomic increment,
//!   so exactly one caller wins each generation;
//! - the time it was taken is stored (bucket [`TIMES`]) *before* it is claimed, so a
//!   claimed generation always has a time, whatever fails afterwards;
//! - the caller that finds it held decides, from its own records, whether the holder left
//!   it unfinished (no result, and old enough), and then [`take_over`] gives the next
//!   generation to exactly one of the callers that try.
//!
//! Keyvalue has no compare-and-swap: every decision rests on an increment's answer.

use crate::time::Timestamp;
use crate::store::{JsonStore, KeyValue, StoreResult};

/// When each generation was taken (`<bucket>/<generation key>` → Unix milliseconds).
pub const TIMES: &str = "lease_times";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The caller holds this generation: it does the work.
    Won { generation: u64 },
    /// Another caller holds the latest generation, taken at `since_ms` (0 when unknown:
    /// a claim made before leases existed, or one its holder gave back).
    Held { generation: u64, since_ms: u64 },
}

impl Lease {
    /// Whether a held lease is at least `after_ms` old at `now` (never for a won one).
    pub fn held_longer_than(&self, after_ms: u64, now: Timestamp) -> bool {
        matches!(self, Lease::Held { since_ms, .. } if now.millis_since(Timestamp::from_millis(*since_ms)) >= after_ms)
    }
}

/// The store key of one generation of `key`, also handy to key that generation's result.
pub fn generation_key(key: &str, generation: u64) -> String {
    if generation == 0 {
        key.to_string()
    } else {
        format!("{key}#{generation}")
    }
}

fn time_key(bucket: &str, generation_key: &str) -> String {
    format!("{bucket}/{generation_key}")
}

/// Takes the lease on `key` if nobody holds it yet; otherwise tells which generation is
/// held and since when.
pub fn take(store: &impl KeyValue, bucket: &str, key: &str, now: Timestamp) -> StoreResult<Lease> {
    let mut generation = 0;
    loop {
        if store.counter(bucket, &generation_key(key, generation))? == 0 {
            return claim_generation(store, bucket, key, generation, now);
        }
        if store.counter(bucket, &generation_key(key, generation + 1))? == 0 {
            return Ok(Lease::Held { generation, since_ms: since(store, bucket, key, generation)? });
        }
        generation += 1;
    }
}

/// Takes the generation after `held`, which the caller found left unfinished; of all
/// callers that try, exactly one gets `Won`.
pub fn take_over(store: &impl KeyValue, bucket: &str, key: &str, held: u64, now: Timestamp) -> StoreResult<Lease> {
    claim_generation(store, bucket, key, held + 1, now)
}

/// Gives a generation back that its holder could not finish, so that the next caller can
/// take over at once instead of waiting until it is old (best effort: when this write
/// fails too, the lease simply expires).
pub fn release(store: &impl KeyValue, bucket: &str, key: &str, generation: u64) -> StoreResult<()> {
    store.set(TIMES, &time_key(bucket, &generation_key(key, generation)), b"0")
}

fn claim_generation(store: &impl KeyValue, bucket: &str, key: &str, generation: u64, now: Timestamp) -> StoreResult<Lease> {
    let claim = generation_key(key, generation);
    store.set(TIMES, &time_key(bucket, &claim), now.millis().to_string().as_bytes())?;
    if store.claim(bucket, &claim)? {
        Ok(Lease::Won { generation })
    } else {
        Ok(Lease::Held { generation, since_ms: since(store, bucket, key, generation)? })
    }
}

fn since(store: &impl KeyValue, bucket: &str, key: &str, generation: u64) -> StoreResult<u64> {
    store.counter(TIMES, &time_key(bucket, &generation_key(key, generation)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::FlakyStore;

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    #[test]
    fn the_first_caller_wins_and_others_see_since_when() {
        let store = MemoryStore::default();
        assert_eq!(take(&store, "c", "k", at(1000)).unwrap(), Lease::Won { generation: 0 });
        let held = take(&store, "c", "k", at(5000)).unwrap();
        assert_eq!(held, Lease::Held { generation: 0, since_ms: 1000 });
        assert!(!held.held_longer_than(4001, at(5000)));
        assert!(held.held_longer_than(4000, at(5000)));
        assert!(!Lease::Won { generation: 0 }.held_longer_than(0, at(5000)));
        assert_eq!(store.counter("c", "k").unwrap(), 1, "generation 0 is the plain key, as claims were before");
    }

    #[test]
    fn one_caller_takes_over_and_becomes_the_latest_generation() {
        let store = MemoryStore::default();
        take(&store, "c", "k", at(1000)).unwrap();
        assert_eq!(take_over(&store, "c", "k", 0, at(9000)).unwrap(), Lease::Won { generation: 1 });
        assert_eq!(take_over(&store, "c", "k", 0, at(9001)).unwrap(), Lease::Held { generation: 1, since_ms: 9001 });
        assert_eq!(take(&store, "c", "k", at(9500)).unwrap().held_longer_than(1000, at(9500)), false);
        assert_eq!(take_over(&store, "c", "k", 1, at(20_000)).unwrap(), Lease::Won { generation: 2 });
        assert_eq!(take(&store, "c", "k", at(20_001)).unwrap(), Lease::Held { generation: 2, since_ms: 20_000 });
        assert!(store.exists("c", "k#2").unwrap());
    }

    #[test]
    fn a_claim_without_a_time_counts_as_old() {
        let store = MemoryStore::default();
        store.claim("c", "k").unwrap(); // made before leases existed
        assert_eq!(take(&store, "c", "k", at(1000)).unwrap(), Lease::Held { generation: 0, since_ms: 0 });
    }

    #[test]
    fn a_released_generation_is_old_at_once() {
        let store = MemoryStore::default();
        take(&store, "c", "k", at(1000)).unwrap();
        release(&store, "c", "k", 0).unwrap();
        assert!(take(&store, "c", "k", at(1001)).unwrap().held_longer_than(1000, at(1001)));
    }

    #[test]
    fn a_take_cut_short_by_an_outage_leaves_nothing_held() {
        for first_failing_write in 1..=2 {
            let store = FlakyStore::default();
            store.outage_from_write(first_failing_write);
            assert!(take(&store, "c", "k", at(1000)).is_err());
            store.heal();
            assert_eq!(take(&store, "c", "k", at(2000)).unwrap(), Lease::Won { generation: 0 }, "outage at write {first_failing_write}");
        }
    }
}
