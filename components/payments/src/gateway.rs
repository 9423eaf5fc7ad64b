//! The card gateway (Stripe, behind the payments-stripe provider) and refunds.

use ticketing_common::events::{HandlerError, OrderStatus};
use ticketing_common::money::Cents;
use ticketing_common::store::KeyValue;

use crate::store::{self, ChargeStatus};

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

/// Refunds the order's completed charge when the order is cancelled (a payment that raced
/// with an expiry). Once per charge: the refund id is recorded and the idempotency key is
/// the charge's. Returns whether it refunded now; an error is worth retrying (the
/// `order:cancelled` handler fails, so the event comes again until the refund is done).
pub fn refund_if_cancelled(store: &impl KeyValue, gateway: &impl CardGateway, order_id: &str) -> Result<bool, HandlerError> {
    let order = store::order(store, order_id)?;
    if order.is_none_or(|o| o.status != OrderStatus::Cancelled) {
        return Ok(false);
    }
    let Some(mut charge) = store::charge_of(store, order_id)? else { return Ok(false) };
    let (ChargeStatus::Completed, Some(stripe_id), None) = (charge.status, charge.stripe_id.clone(), &charge.stripe_refund_id) else {
        return Ok(false);
    };
    let refund_id = gateway.refund(&stripe_id, &format!("refund-{}", charge.id)).map_err(|e| HandlerError::retry(format!("refund failed: {e:?}")))?;
    charge.stripe_refund_id = Some(refund_id);
    store::put_charge(store, &charge)?;
    Ok(true)
}
