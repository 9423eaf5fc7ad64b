//! scheduler-redis: delayed jobs for components (`ticketing:jobs`), kept in Redis.
//!
//! - [`jobs`]: the job store (schedule, cancel, take due jobs under a lease, complete,
//!   retry, give up), one Lua script per change, so several instances can share it.
//! - [`delivery`]: the loop that runs due jobs and records each outcome.
//! - [`provider`]: the wRPC adapter (serves `scheduler`, calls components' `runner`).
//! - [`config`]: provider and link settings.

pub mod config;
pub mod delivery;
pub mod jobs;
pub mod provider;
