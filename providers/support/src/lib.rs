//! What the native capability providers (`providers/*`) have in common, defined once.
//!
//! The wasm components share `ticketing-common`; the providers are native processes
//! started by a wasmCloud host and share a different set of chores, which live here so
//! that each provider's `main.rs` is a few lines and `common` holds only what the
//! components need:
//!
//! - [`settings`]: reading config and secrets maps (keys in any case, a credential from a
//!   secret first, then config; numbers, millisecond lists, URLs redacted for logs);
//! - [`link`]: [`LinkKey`], which link a route, a store or a consumer belongs to;
//! - [`backoff`]: the two retry rules the providers use (a configured list of delays whose
//!   last one repeats, and a pause that doubles up to a cap);
//! - [`outcome`]: [`CallOutcome`], what became of a call into a component (done, failed,
//!   rejected, nobody there), and how a wRPC result maps onto it;
//! - [`wrpc`]: recognising a wRPC call that no instance took;
//! - [`logging`]: the one log (and OpenTelemetry) set-up every provider process runs first;
//! - [`trace`]: the span of a call from a component, continuing the component's trace;
//! - [`start`](start()): starting a provider with its host and getting the client its
//!   exports are served on.
//!
//! ## Threads
//!
//! Every provider runs on a single-threaded Tokio runtime (`main.rs`). A provider is
//! I/O-bound glue between NATS and a server, and shares the machine's cores with the
//! hosts and the servers; with a worker thread per core it spent a good part of its CPU
//! waking the other thread to hand tasks over. keyvalue-mongo's CPU per ticket created:
//! 1.07 -> 0.77 ms at c=8, 1.46 -> 1.07 ms at c=1 (`./ticketing profile create`,
//! 2026-11-27, 2 cores). None of them blocks a thread (no `block_on`, no blocking I/O).

pub mod backoff;
pub mod link;
pub mod logging;
pub mod outcome;
pub mod settings;
mod start;
pub mod trace;
pub mod wrpc;

pub use link::LinkKey;
pub use outcome::CallOutcome;
pub use start::start;
