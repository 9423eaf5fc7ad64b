//! Shared by every ticketing component (and by the native pieces that answer HTTP):
//! the error type and its JSON form, plain HTTP values for bindings-free route
//! handlers. Everything here compiles natively and to wasm32-wasip2.

pub mod error;
pub mod http;

pub use error::{ApiError, ErrorItem};
