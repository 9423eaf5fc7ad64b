//! Scheduling an order's expiry and announcing it when due.

use ticketing_common::events::{decode_and, unknown_subject, Event, ExpirationComplete, HandlerError, Handled, OrderCreated};


/// The scheduler capability: schedule job `id` for `due_ms`; false when that id is
/// already scheduled or ran recently.
pub trait Scheduler {
    fn schedule(&self, id: &str, payload: Vec<u8>, due_ms: u64) -> Result<bool, ScheduleError>;
}

/// Why the scheduler did not schedule a job (`ticketing:jobs/types.schedule-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// Repeating the call will not help (a job without an id, ...).
    Refused(String),
    /// The job store is out of reach for now.
    StoreUnavailable(String),
}

impl From<ScheduleError> for HandlerError {
    /// A refused job never will be scheduled, so its event is rejected; an unavailable
    /// store is retried.
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Refused(reason) => HandlerError::Reject(format!("the scheduler refused the job: {reason}")),
            ScheduleError::StoreUnavailable(reason) => HandlerError::Retry(format!("the scheduler's store is unavailable: {reason}")),
        }
    }
}

/// Runs the handler of `subject` on the event in `body`.
pub fn dispatch(scheduler: &impl Scheduler, subject: &str, body: &[u8]) -> Handled {
    match subject {
        OrderCreated::SUBJECT => decode_and(body, |e| on_order_created(scheduler, e)),
        other => unknown_subject(other),
    }
}

/// `order:created`: expire the order at its `expiresAt`. The job id is the order id, so a
/// redelivered event schedules nothing new. (An unreadable `expiresAt` never decodes: the
/// event is rejected by [`dispatch`].)
pub fn on_order_created(scheduler: &impl Scheduler, event: &OrderCreated) -> Handled {
    let payload = ExpirationComplete { order_id: event.id.clone() }.to_bytes();
    scheduler.schedule(&event.id, payload, event.expires_at.millis()).map(|_newly_scheduled| ()).map_err(HandlerError::from)
}

/// A due job: the `expiration:complete` to announce for its order. Nothing is stored
/// here, so the adapter publishes it directly; a failed publish fails the job, which the
/// scheduler runs again. An error here is a payload that never decodes: the adapter
/// rejects the job, so the scheduler gives it up at once.
pub fn run_job(payload: &[u8]) -> Result<ExpirationComplete, String> {
    ExpirationComplete::from_bytes(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use ticketing_common::events::{OrderStatus, OrderTicket};
    use ticketing_common::money::Cents;
    use ticketing_common::time::Timestamp;

    /// Keeps jobs like the real scheduler: one per id.
    #[derive(Default)]
    struct Jobs(RefCell<BTreeMap<String, (Vec<u8>, u64)>>);

    impl Scheduler for Jobs {
        fn schedule(&self, id: &str, payload: Vec<u8>, due_ms: u64) -> Result<bool, ScheduleError> {
            let mut jobs = self.0.borrow_mut();
            if jobs.contains_key(id) {
                return Ok(false);
            }
            jobs.insert(id.to_string(), (payload, due_ms));
            Ok(true)
        }
    }

    fn order_created(expires_at: &str) -> OrderCreated {
        OrderCreated {
            id: "o1".into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "u1".into(),
            expires_at: Timestamp::parse_iso8601(expires_at).unwrap(),
            ticket: OrderTicket { id: "t1".into(), price: Cents(2000) },
        }
    }

    #[test]
    fn an_order_is_scheduled_to_expire_at_its_expires_at_once() {
        let jobs = Jobs::default();
        on_order_created(&jobs, &order_created("2026-11-23T10:15:00.000Z")).unwrap();
        on_order_created(&jobs, &order_created("2026-11-23T10:15:00.000Z")).unwrap(); // redelivery
        let scheduled = jobs.0.borrow();
        assert_eq!(scheduled.len(), 1);
        let (payload, due) = &scheduled["o1"];
        assert_eq!(*due, 1_795_428_900_000);
        assert_eq!(ExpirationComplete::from_bytes(payload).unwrap(), ExpirationComplete { order_id: "o1".into() });
    }

    #[test]
    fn an_unreadable_expiry_is_rejected() {
        let jobs = Jobs::default();
        let mut unreadable = serde_json::to_value(order_created("2026-11-23T10:15:00.000Z")).unwrap();
        unreadable["expiresAt"] = "soon".into();
        let refused = dispatch(&jobs, "order:created", unreadable.to_string().as_bytes()).unwrap_err();
        assert!(matches!(refused, HandlerError::Reject(ref r) if r.contains("soon")), "never readable: {refused}");
        dispatch(&jobs, "order:created", &order_created("2026-11-23T10:15:00.000Z").to_bytes()).unwrap();
        assert_eq!(jobs.0.borrow().len(), 1);
        assert!(matches!(dispatch(&jobs, "order:created", b"{}"), Err(HandlerError::Reject(_))));
        assert!(matches!(dispatch(&jobs, "order:cancelled", b"{}"), Err(HandlerError::Reject(_))));
    }

    /// A scheduler that fails every call with `error`.
    struct Failing(ScheduleError);

    impl Scheduler for Failing {
        fn schedule(&self, _: &str, _: Vec<u8>, _: u64) -> Result<bool, ScheduleError> {
            Err(self.0.clone())
        }
    }

    #[test]
    fn an_unavailable_store_is_retried_and_a_refused_job_rejected() {
        let event = order_created("2026-11-23T10:15:00.000Z");
        let outage = on_order_created(&Failing(ScheduleError::StoreUnavailable("connection refused".into())), &event);
        assert!(matches!(outage, Err(HandlerError::Retry(ref r)) if r.contains("connection refused")), "{outage:?}");
        let refused = on_order_created(&Failing(ScheduleError::Refused("a job needs an id".into())), &event);
        assert!(matches!(refused, Err(HandlerError::Reject(ref r)) if r.contains("needs an id")), "{refused:?}");
    }

    #[test]
    fn a_due_job_announces_expiration_complete() {
        let event = run_job(&ExpirationComplete { order_id: "o1".into() }.to_bytes()).unwrap();
        assert_eq!(String::from_utf8(event.to_bytes()).unwrap(), r#"{"orderId":"o1"}"#);
        assert!(run_job(b"garbage").is_err());
    }
}
