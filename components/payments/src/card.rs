//! The card port: what payments needs of a card processor (Stripe, behind the
//! payments-stripe provider; a fake in unit tests).

use ticketing_common::money::Cents;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayError {
    /// The card was declined; Stripe's message for the buyer.
    Declined(String),
    /// Stripe refused the request (a bad token ...); Stripe's message.
    Invalid(String),
    /// Stripe could not be reached; the outcome is unknown.
    Unavailable(String),
}

pub trait CardGateway {
    /// Charges `amount` (usd) to the card `source`; returns Stripe's charge id.
    fn charge(&self, amount: Cents, source: &str, idempotency_key: &str, order_id: &str) -> Result<String, PayError>;
    /// Refunds a whole charge; returns Stripe's refund id.
    fn refund(&self, stripe_charge_id: &str, idempotency_key: &str) -> Result<String, PayError>;
}
