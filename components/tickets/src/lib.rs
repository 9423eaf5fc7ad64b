//! tickets service: tickets for sale (`/api/tickets*`) and the ticket side of
//! reservations (events `order:created` / `order:cancelled`).
//!
//! - HTTP routes: [`routes`]
//! - event handlers: [`listeners`]
//! - storage (bucket `tickets`, version claims in `ticket_versions`): [`store`]

pub mod listeners;
pub mod routes;
pub mod store;
