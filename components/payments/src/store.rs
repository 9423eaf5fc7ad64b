//! Payments' replica of orders and its charges, in the keyvalue store.
//!
//! **One charge per order.** Attempts to pay an order are numbered by how many failed in a
//! way the buyer can fix (a bad token); a request may charge only if it holds the
//! attempt's [`lease`] `charge_claims/<order>#<attempt>`. Every other request for that
//! attempt sees the winner's charge (`order_charges/<order>`), so a double submit charges
//! once. A winner that failed before recording its charge (a store outage) leaves the
//! lease without a charge: once it is old, one later request takes it over. The charge id
//! (and with it the Stripe idempotency key) is derived from order and attempt, so even a
//! winner that was only slow and a request that took over would charge the card once.

use serde::{Deserialize, Serialize};
use ticketing_common::events::{Announcement, Event, OrderStatus};
use ticketing_common::ids::{derived_id, OrderId, UserId};
use ticketing_common::lease::{self, Lease};
use ticketing_common::money::Cents;
use ticketing_common::store::{JsonStore, KeyValue, StoreResult};
use ticketing_common::time::Timestamp;

pub const ORDERS: &str = "orders";
pub const CHARGES: &str = "charges";
pub const ORDER_CHARGES: &str = "order_charges";
pub const CHARGE_CLAIMS: &str = "charge_claims";
pub const CHARGE_ATTEMPTS: &str = "charge_attempts";

/// What payments knows of an order (from `order:created` / `order:cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    pub id: OrderId,
    pub version: u64,
    pub user_id: UserId,
    pub price: Cents,
    pub status: OrderStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChargeStatus {
    /// Sent to Stripe; the outcome is not recorded yet.
    Created,
    Completed,
    Failed,
}

/// The seed's Charge entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub id: String,
    pub order_id: OrderId,
    pub status: ChargeStatus,
    pub amount: Cents,
    pub stripe_id: Option<String>,
    pub stripe_refund_id: Option<String>,
    /// Why it failed, as shown to the buyer.
    pub failure: Option<String>,
    #[serde(rename = "createdAtMs")]
    pub created_at: Timestamp,
}

pub fn order(store: &impl KeyValue, id: &str) -> StoreResult<Option<OrderReplica>> {
    store.get_json(ORDERS, id)
}

pub fn put_order(store: &impl KeyValue, order: &OrderReplica) -> StoreResult<()> {
    store.set_json(ORDERS, &order.id, order)
}

pub fn put_charge(store: &impl KeyValue, charge: &Charge) -> StoreResult<()> {
    store.set_json(CHARGES, &charge.id, charge)
}

/// Stores the outcome of a charge with the event announcing it (`payment:created`,
/// `payment:failed`), in one write: the outcome is never stored unannounced.
pub fn put_charge_announcing(store: &impl KeyValue, charge: &Charge, event: &impl Event) -> StoreResult<()> {
    store.set_json_announcing(CHARGES, &charge.id, charge, &[Announcement::of(event)])
}

/// The order's latest charge, if any.
pub fn charge_of(store: &impl KeyValue, order_id: &str) -> StoreResult<Option<Charge>> {
    let Some(id) = store.get(ORDER_CHARGES, order_id)? else { return Ok(None) };
    store.get_json(CHARGES, &String::from_utf8_lossy(&id))
}

/// The order's current payment attempt, and whether this request holds it.
pub fn claim_attempt(store: &impl KeyValue, order_id: &str, now: Timestamp) -> StoreResult<(u64, Lease)> {
    let attempt = store.counter(CHARGE_ATTEMPTS, order_id)?;
    Ok((attempt, lease::take(store, CHARGE_CLAIMS, &attempt_key(order_id, attempt), now)?))
}

/// Takes over an attempt whose holder never recorded its charge (see [`lease::take_over`]).
pub fn take_over_attempt(store: &impl KeyValue, order_id: &str, attempt: u64, held: u64, now: Timestamp) -> StoreResult<Lease> {
    lease::take_over(store, CHARGE_CLAIMS, &attempt_key(order_id, attempt), held, now)
}

/// Gives back an attempt that could not record its charge (it charged nothing), so a
/// retry need not wait (best effort).
pub fn release_attempt(store: &impl KeyValue, order_id: &str, attempt: u64, generation: u64) -> StoreResult<()> {
    lease::release(store, CHARGE_CLAIMS, &attempt_key(order_id, attempt), generation)
}

fn attempt_key(order_id: &str, attempt: u64) -> String {
    format!("{order_id}#{attempt}")
}

/// The id of the charge of an order's attempt: the same for every request that makes it.
pub fn charge_id(order_id: &str, attempt: u64) -> String {
    derived_id(order_id, "charge", attempt)
}

/// Stores a new charge as the order's current one.
pub fn start_charge(store: &impl KeyValue, charge: &Charge) -> StoreResult<()> {
    put_charge(store, charge)?;
    store.set(ORDER_CHARGES, &charge.order_id, charge.id.as_bytes())
}

/// Opens the next attempt after one the buyer can fix (a bad token).
pub fn allow_another_attempt(store: &impl KeyValue, order_id: &str) -> StoreResult<()> {
    store.increment(CHARGE_ATTEMPTS, order_id, 1).map(|_| ())
}
