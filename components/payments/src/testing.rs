//! A card gateway for unit tests: records calls, answers as told.

use std::cell::RefCell;

use ticketing_common::money::Cents;

use crate::gateway::{CardGateway, PayError};

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
}

impl Fake {
    pub fn answer(&self, answer: Result<String, PayError>) {
        *self.next.borrow_mut() = Some(answer);
    }

    pub fn on_charge(&self, action: Box<dyn FnOnce()>) {
        *self.during.borrow_mut() = Some(action);
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
        Ok("re_1".into())
    }
}
