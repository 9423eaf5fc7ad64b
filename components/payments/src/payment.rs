//! Paying an order: the rules that charge a card at most once per order, never for an
//! order that is cancelled, and refund a charge that lost a race with a cancellation.
//! The routes parse and authenticate; this module decides, through the store, the card
//! port and orders.

use ticketing_common::events::{HandlerError, OrderStatus, PaymentCreated, PaymentFailed};
use ticketing_common::lease::Lease;
use ticketing_common::store::KeyValue;
use ticketing_common::time::Timestamp;
use ticketing_common::ApiError;

use crate::card::{CardGateway, PayError};
use crate::orders::OrderLookup;
use crate::store::{self, Charge, ChargeStatus, OrderReplica};

/// A charge still `created` after this long lost its answer (Stripe unreachable, or the
/// request died): a new request asks Stripe again with the same idempotency key. Also how
/// long an attempt claimed without a charge (its request failed half-way) blocks others.
pub const UNKNOWN_AFTER_MS: u64 = 30_000;

pub const IN_PROGRESS: &str = "A payment for this order is in progress; try again in a moment";

/// What paying needs: the store, the card port, orders (asked just before a charge) and
/// the time.
pub struct Payer<'a, S: KeyValue, G: CardGateway> {
    pub store: &'a S,
    pub card: &'a G,
    pub orders: &'a dyn OrderLookup,
    pub now: Timestamp,
}

/// `user_id` pays order `order_id` with the card `token`: the charge id once the card is
/// charged the order's price (announced with `payment:created`).
pub fn pay<S: KeyValue, G: CardGateway>(p: &Payer<S, G>, user_id: &str, order_id: &str, token: &str) -> Result<String, ApiError> {
    let order = store::order(p.store, order_id)?.ok_or_else(ApiError::not_found)?;
    if order.user_id != user_id {
        return Err(ApiError::not_authorized());
    }
    if order.status == OrderStatus::Cancelled {
        return Err(ApiError::bad_request("Cannot pay for a cancelled order"));
    }
    confirm_with_orders(p.orders, &order.id)?;
    match store::claim_attempt(p.store, &order.id, p.now)? {
        (attempt, Lease::Won { generation }) => start_charge(p, &order, attempt, generation, token),
        (attempt, held) => answer_from_earlier_attempt(p, &order, attempt, held, token),
    }
}

/// Records the charge of the attempt this request holds, then charges the card.
fn start_charge<S: KeyValue, G: CardGateway>(p: &Payer<S, G>, order: &OrderReplica, attempt: u64, generation: u64, token: &str) -> Result<String, ApiError> {
    let charge = Charge {
        id: store::charge_id(&order.id, attempt),
        order_id: order.id.clone(),
        status: ChargeStatus::Created,
        amount: order.price,
        stripe_id: None,
        stripe_refund_id: None,
        failure: None,
        created_at: p.now,
    };
    if let Err(e) = store::start_charge(p.store, &charge) {
        // Nothing was charged: a retry may go ahead at once.
        let _ = store::release_attempt(p.store, &order.id, attempt, generation);
        return Err(e.into());
    }
    charge_card(p, charge, token)
}

/// Our replica may not have heard of a cancellation yet: orders is asked before any
/// charge, and a card is never charged for an order it cannot confirm. (A cancellation
/// in the moment between this and the charge is still refunded, see `charge_card`.)
fn confirm_with_orders(orders: &dyn OrderLookup, order_id: &str) -> Result<(), ApiError> {
    match orders.current_status(order_id) {
        Ok(Some(OrderStatus::Cancelled)) => Err(ApiError::bad_request("Cannot pay for a cancelled order")),
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::not_found()),
        Err(_) => Err(ApiError::new(503, "Payments are unavailable right now, please try again")),
    }
}

/// Another request holds this attempt: answer with its outcome, never a second charge.
fn answer_from_earlier_attempt<S: KeyValue, G: CardGateway>(
    p: &Payer<S, G>,
    order: &OrderReplica,
    attempt: u64,
    held: Lease,
    token: &str,
) -> Result<String, ApiError> {
    let charge = store::charge_of(p.store, &order.id)?;
    match charge {
        Some(charge) if charge.status == ChargeStatus::Completed => Ok(charge.id),
        Some(charge) if charge.status == ChargeStatus::Failed && charge.id == store::charge_id(&order.id, attempt) => {
            Err(ApiError::bad_request(charge.failure.as_deref().unwrap_or("The payment failed")))
        }
        Some(charge) if charge.status == ChargeStatus::Created => {
            if p.now.millis_since(charge.created_at) < UNKNOWN_AFTER_MS {
                return Err(ApiError::new(409, IN_PROGRESS));
            }
            charge_card(p, charge, token)
        }
        // No charge of this attempt: its holder is recording it, or failed before it could.
        _ => match held {
            Lease::Held { generation, .. } if held.held_longer_than(UNKNOWN_AFTER_MS, p.now) => {
                match store::take_over_attempt(p.store, &order.id, attempt, generation, p.now)? {
                    Lease::Won { generation } => start_charge(p, order, attempt, generation, token),
                    Lease::Held { .. } => Err(ApiError::new(409, IN_PROGRESS)),
                }
            }
            _ => Err(ApiError::new(409, IN_PROGRESS)),
        },
    }
}

fn charge_card<S: KeyValue, G: CardGateway>(p: &Payer<S, G>, mut charge: Charge, token: &str) -> Result<String, ApiError> {
    let key = format!("charge-{}", charge.id);
    match p.card.charge(charge.amount, token, &key, &charge.order_id) {
        Ok(stripe_id) => {
            charge.status = ChargeStatus::Completed;
            charge.stripe_id = Some(stripe_id.clone());
            let paid = PaymentCreated { id: charge.id.clone(), order_id: charge.order_id.clone(), stripe_id };
            store::put_charge_announcing(p.store, &charge, &paid)?;
            // The order may have been cancelled (expired) while the card was charged.
            if refund_if_cancelled(p.store, p.card, &charge.order_id).unwrap_or(false) {
                return Err(ApiError::bad_request("The order expired while paying; the charge was refunded"));
            }
            Ok(charge.id)
        }
        // A declined card ends the order: the failure is announced with it.
        Err(PayError::Declined(message)) => {
            let failed = failed(charge, &message);
            let ended = PaymentFailed { order_id: failed.order_id.clone(), reason: message.clone() };
            store::put_charge_announcing(p.store, &failed, &ended)?;
            Err(ApiError::bad_request(message))
        }
        // A bad token the buyer can correct: the order stays open for another attempt.
        Err(PayError::Invalid(message)) => {
            let failed = failed(charge, &message);
            store::put_charge(p.store, &failed)?;
            store::allow_another_attempt(p.store, &failed.order_id)?;
            Err(ApiError::bad_request(message))
        }
        Err(PayError::Unavailable(_)) => Err(ApiError::new(503, "Payments are unavailable right now, please try again")),
    }
}

fn failed(charge: Charge, message: &str) -> Charge {
    Charge { status: ChargeStatus::Failed, failure: Some(message.to_string()), ..charge }
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
