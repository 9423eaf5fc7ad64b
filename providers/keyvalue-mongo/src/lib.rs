//! keyvalue-mongo: the lattice's keyvalue capability on MongoDB (FerretDB locally), and
//! the relay that gets the events stored with a value out to NATS JetStream.
//!
//! - [`mongo`]: the storage itself, on the official `mongodb` driver (tested on its own
//!   against a real server);
//! - [`key_index`]: a collection's keys, sorted, kept in this process for `list-keys`;
//! - [`lease`]: which instance serves (every host runs one; the lease holder serves, the
//!   others stand by and take over within seconds when it is lost);
//! - [`outbox`]: the transactional outbox: a value's `_outbox` events are stored with it
//!   and published to JetStream at least once, whatever fails in between;
//! - [`write_gate`]: one write at a time per database where the server needs it (SQLite);
//! - [`config`]: what a link says (connection URI, database) and what the provider's own
//!   config says (NATS URL, event subject prefix, sweep interval);
//! - [`provider`]: the thin wRPC adapter that serves `wrpc:keyvalue/{store,atomics,batch}`.

pub mod config;
pub mod key_index;
pub mod lease;
pub mod mongo;
pub mod outbox;
pub mod provider;
pub mod write_gate;
