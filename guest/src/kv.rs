//! [`KeyValue`] over `wasi:keyvalue`: what the lattice's keyvalue provider stores.

use ticketing_common::store::{KeyPage, KeyValue, StoreError, StoreResult};

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

    fn list_keys_page(&self, bucket: &str, cursor: Option<u64>) -> StoreResult<KeyPage> {
        let page = open(bucket)?.list_keys(cursor).map_err(to_store_error)?;
        Ok(KeyPage { keys: page.keys, cursor: page.cursor })
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        batch::set_many(&open(bucket)?, entries).map_err(to_store_error)
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
