//! keyvalue-mongo: the lattice's keyvalue capability on MongoDB (FerretDB locally).
//!
//! - [`mongo`]: the storage itself, on the official `mongodb` driver (tested on its own
//!   against a real server);
//! - [`config`]: what a link says (connection URI, database);
//! - [`provider`]: the thin wRPC adapter that serves `wrpc:keyvalue/{store,atomics,batch}`.

pub mod config;
pub mod mongo;
pub mod provider;
