//! orders service: reservations of tickets.
//!
//! - storage and the no-double-sale rule: [`store`]
//! - event handlers (ticket replica, expiry, payment): [`listeners`]

pub mod listeners;
pub mod store;
