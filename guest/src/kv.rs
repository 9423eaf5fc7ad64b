//! [`KeyValue`] over `wasi:keyvalue`: what the lattice's keyvalue provider stores.

use ticketing_common::store::{KeyValue, StoreError, StoreResult};

use crate::wasi::keyvalue::{atomics, batch, store};

/// The component's keyvalue link. Buckets are opened per call: opening is a local
/// handle in the host, not a round trip.
pub struct LatticeStore;

fn open(bucket: &str) -> StoreResult<store::Bucket> {
    store::open(bucket).map_err(to_store_error)
}

fn to_store_error(e: store::Error) -> StoreError {
    StoreError(match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(msg) => msg,
    })
}

impl KeyValue for LatticeStore {
    fn get(&self, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        open(bucket)?.get(key).map_err(to_store_error)
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        open(bucket)?.set(key, value).map_err(to_store_error)
    }

    fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        open(bucket)?.delete(key).map_err(to_store_error)
    }

    fn exists(&self, bucket: &str, key: &str) -> StoreResult<bool> {
        open(bucket)?.exists(key).map_err(to_store_error)
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> StoreResult<u64> {
        atomics::increment(&open(bucket)?, key, delta).map_err(to_store_error)
    }

    fn list_keys(&self, bucket: &str) -> StoreResult<Vec<String>> {
        let bucket = open(bucket)?;
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = bucket.list_keys(cursor).map_err(to_store_error)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = batch::get_many(&open(bucket)?, keys).map_err(to_store_error)?;
        // The provider answers in the order asked; match by key anyway, to be safe.
        let mut by_key: std::collections::HashMap<String, Vec<u8>> =
            found.into_iter().flatten().collect();
        Ok(keys.iter().map(|k| by_key.remove(k)).collect())
    }
}
