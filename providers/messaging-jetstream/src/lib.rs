//! messaging-jetstream: event delivery with NATS Streaming's guarantees, on JetStream.
//!
//! [`bus`] is the delivery engine, independent of wasmCloud: a stream that keeps every
//! event, one durable consumer per (subscriber, subject) shared by all of the
//! subscriber's instances, acknowledgement only when the handler succeeds, redelivery
//! with backoff otherwise, and a dead-letter subject after the last attempt.
//!
//! Status: the engine is done and tested against a real NATS server; the wRPC adapter
//! that serves `wasmcloud:messaging` to components is the next step (issue 4).

pub mod bus;
