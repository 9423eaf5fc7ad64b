//! orders service: reservations of tickets.
//!
//! - HTTP routes: [`routes`]
//! - storage and the no-double-sale rule: [`store`]
//! - event handlers (ticket replica, expiry, payment): [`listeners`]

pub mod listeners;
pub mod routes;
pub mod store;
