//! messaging-jetstream: event delivery with NATS Streaming's guarantees, on JetStream.
//!
//! - [`bus`]: the delivery engine, independent of wasmCloud: a stream that keeps every
//!   event, one durable consumer per (subscriber, subject) shared by all of the
//!   subscriber's instances, acknowledgement only when the handler succeeds, redelivery
//!   with backoff otherwise, and a dead-letter subject after the last attempt. Handlers
//!   answer with `ticketing_provider_support::CallOutcome`.
//! - [`provider`]: the wRPC adapter serving `wasmcloud:messaging` to components.
//! - [`config`]: provider and link settings.

pub mod bus;
pub mod config;
pub mod provider;
