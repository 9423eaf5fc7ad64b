//! A card gateway for unit tests: records calls, answers as told.

use std::cell::RefCell;

use ticketing_common::money::Cents;

use ticketing_common::events::OrderStatus;

use crate::card::{CardGateway, PayError};
use crate::orders::OrderLookup;

pub const ORDER: &str = "5ec00000aaaaaaaaaaaaaaaa";

#[derive(Default)]
pub struct Fake {
    /// (amount in cents, source, idempotency key) per charge call.
    charges: RefCell<Vec<(u64, String, String)>>,
    refunds: RefCell<Vec<(String, String)>>,
    /// The next charge's answer (success with `ch_1` when none).
    next: RefCell<Option<Result<String, PayError>>>,
    /// Runs during the next charge (to change the world meanwhile).
    during: RefCell<Option<Box<dyn FnOnce()>>>,
    /// What orders answers for an order's status (`created` when not told).
    order_status: RefCell<Option<Result<Option<OrderStatus>, String>>>,
    /// The next refund's failure, if any.
    refund_failure: RefCell<Option<PayError>>,
}

impl Fake {
    pub fn answer(&self, answer: Result<String, PayError>) {
        *self.next.borrow_mut() = Some(answer);
    }

    pub fn on_charge(&self, action: Box<dyn FnOnce()>) {
        *self.during.borrow_mut() = Some(action);
    }

    /// Orders will answer `status` for the order from now on.
    pub fn orders_answer(&self, status: Result<Option<OrderStatus>, String>) {
        *self.order_status.borrow_mut() = Some(status);
    }

    /// The next refund fails with `error`.
    pub fn fail_next_refund(&self, error: PayError) {
        *self.refund_failure.borrow_mut() = Some(error);
    }

    pub fn charges(&self) -> Vec<(u64, String, String)> {
        self.charges.borrow().clone()
    }

    pub fn refunds(&self) -> Vec<(String, String)> {
        self.refunds.borrow().clone()
    }
}

impl CardGateway for Fake {
    fn charge(&self, amount: Cents, source: &str, key: &str, _order_id: &str) -> Result<String, PayError> {
        self.charges.borrow_mut().push((amount.0, source.to_string(), key.to_string()));
        if let Some(action) = self.during.borrow_mut().take() {
            action();
        }
        self.next.borrow_mut().take().unwrap_or_else(|| Ok("ch_1".into()))
    }

    fn refund(&self, stripe_charge_id: &str, key: &str) -> Result<String, PayError> {
        self.refunds.borrow_mut().push((stripe_charge_id.to_string(), key.to_string()));
        match self.refund_failure.borrow_mut().take() {
            Some(error) => Err(error),
            None => Ok("re_1".into()),
        }
    }
}

impl OrderLookup for Fake {
    fn current_status(&self, _order_id: &str) -> Result<Option<OrderStatus>, String> {
        self.order_status.borrow().clone().unwrap_or(Ok(Some(OrderStatus::Created)))
    }
}
