//! expiration service: an order that is not paid in time is expired.
//!
//! On `order:created` it schedules a job for the order's `expiresAt` through the
//! scheduler capability (`ticketing:jobs`, Redis-backed); when the job runs it publishes
//! `expiration:complete`, and orders decides (a paid order stays complete).
//!
//! - event handler and job runner: [`expiry`]

pub mod expiry;

/// The wasm adapter: events and due jobs in, `expiration:complete` out.
#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("expiration");

    use bindings::exports::ticketing::jobs::runner::Guest as JobRunner;
    use bindings::exports::wasmcloud::messaging::handler::Guest as EventHandler;
    use bindings::ticketing::jobs::scheduler;
    use bindings::ticketing::jobs::types::{Job, JobId, RunError, ScheduleError};
    use ticketing_guest::events;
    use ticketing_guest::wasmcloud::messaging::types::BrokerMessage;

    use super::expiry;

    /// The lattice's scheduler, as the plain trait the logic uses.
    struct LatticeScheduler;

    impl expiry::Scheduler for LatticeScheduler {
        fn schedule(&self, id: &str, payload: Vec<u8>, due_ms: u64) -> Result<bool, expiry::ScheduleError> {
            scheduler::schedule(&Job { id: id.to_string(), payload, due_ms }).map_err(|e| match e {
                ScheduleError::Refused(reason) => expiry::ScheduleError::Refused(reason),
                ScheduleError::StoreUnavailable(reason) => expiry::ScheduleError::StoreUnavailable(reason),
            })
        }
    }

    struct Expiration;

    impl EventHandler for Expiration {
        fn handle_message(message: BrokerMessage) -> Result<(), String> {
            expiry::dispatch(&LatticeScheduler, &message.subject, &message.body).map_err(|e| e.to_wire())
        }
    }

    impl JobRunner for Expiration {
        fn run(_id: JobId, payload: Vec<u8>) -> Result<(), RunError> {
            let event = expiry::run_job(&payload).map_err(RunError::Reject)?;
            events::publish(&event).map_err(RunError::Retry)
        }
    }

    bindings::export!(Expiration with_types_in bindings);
}
