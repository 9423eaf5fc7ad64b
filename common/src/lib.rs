//! Shared by every ticketing component (and by the native pieces that answer HTTP).
//! Everything here is plain Rust that compiles natively and to wasm32-wasip2, so
//! service logic built on it is unit-tested without a lattice. What only the native
//! providers share (config and secrets, link keys, backoff, call outcomes, logging) is
//! in `ticketing-provider-support` (`providers/support`).

pub mod api;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod lease;
pub mod listing;
pub mod money;
pub mod paging;
pub mod session;
pub mod store;
pub mod testing;
pub mod time;
pub mod validate;

pub use error::{ApiError, ErrorItem};
