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
