//! payments-stripe: card charges and refunds for components, on Stripe's REST API.
//!
//! - [`stripe`]: the REST client (form-encoded, idempotency keys, retries, timeouts).
//! - [`provider`]: the wRPC adapter serving `ticketing:stripe/charges`.
//! - [`config`]: settings; the secret key from a wasmCloud secret.

pub mod config;
pub mod provider;
pub mod stripe;
