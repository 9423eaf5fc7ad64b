//! Scheduling an order's expiry and announcing it when due.

use ticketing_common::events::{Event, ExpirationComplete, OrderCreated, Outbox};
use ticketing_common::time::parse_iso8601;

pub type Handled = Result<(), String>;

/// The scheduler capability: schedule job `id` for `due_ms`; false when that id is
/// already scheduled or ran recently.
pub trait Scheduler {
    fn schedule(&self, id: &str, payload: Vec<u8>, due_ms: u64) -> Result<bool, String>;
}

/// `order:created`: expire the order at its `expiresAt`. The job id is the order id, so a
/// redelivered event schedules nothing new.
pub fn on_order_created(scheduler: &impl Scheduler, event: &OrderCreated) -> Handled {
    let due_ms = parse_iso8601(&event.expires_at)
        .ok_or_else(|| format!("order {} has an unreadable expiresAt `{}`", event.id, event.expires_at))?;
    let payload = ExpirationComplete { order_id: event.id.clone() }.to_bytes();
    scheduler.schedule(&event.id, payload, due_ms).map(|_newly_scheduled| ())
}

/// A due job: announce `expiration:complete` for its order.
pub fn run_job(payload: &[u8], outbox: &Outbox) -> Handled {
    outbox.push(&ExpirationComplete::from_bytes(payload)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use ticketing_common::events::{OrderStatus, OrderTicket};
    use ticketing_common::money::Cents;

    /// Keeps jobs like the real scheduler: one per id.
    #[derive(Default)]
    struct Jobs(RefCell<BTreeMap<String, (Vec<u8>, u64)>>);

    impl Scheduler for Jobs {
        fn schedule(&self, id: &str, payload: Vec<u8>, due_ms: u64) -> Result<bool, String> {
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
            expires_at: expires_at.into(),
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
    fn an_unreadable_expiry_is_not_handled() {
        assert!(on_order_created(&Jobs::default(), &order_created("soon")).unwrap_err().contains("unreadable"));
    }

    #[test]
    fn a_due_job_announces_expiration_complete() {
        let outbox = Outbox::default();
        run_job(&ExpirationComplete { order_id: "o1".into() }.to_bytes(), &outbox).unwrap();
        let published = outbox.take();
        assert_eq!(published[0].0, "expiration:complete");
        assert_eq!(String::from_utf8(published[0].1.clone()).unwrap(), r#"{"orderId":"o1"}"#);
        assert!(run_job(b"garbage", &outbox).is_err());
    }
}
