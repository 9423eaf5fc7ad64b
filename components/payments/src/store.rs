//! Payments' replica of orders and its charges, in the keyvalue store.
//!
//! **One charge per order.** Attempts to pay an order are numbered by how many failed in a
//! way the buyer can fix (a bad token); a request may charge only if its increment of
//! `charge_claims/<order>#<attempt>` returns 1. Every other request for that attempt sees
//! the winner's charge (`order_charges/<order>`), so a double submit charges once.

use serde::{Deserialize, Serialize};
use ticketing_common::events::OrderStatus;
use ticketing_common::money::Cents;
use ticketing_common::store::{JsonStore, KeyValue, StoreResult};

pub const ORDERS: &str = "orders";
pub const CHARGES: &str = "charges";
pub const ORDER_CHARGES: &str = "order_charges";
pub const CHARGE_CLAIMS: &str = "charge_claims";
pub const CHARGE_ATTEMPTS: &str = "charge_attempts";

/// What payments knows of an order (from `order:created` / `order:cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    pub id: String,
    pub version: u64,
    pub user_id: String,
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
    pub order_id: String,
    pub status: ChargeStatus,
    pub amount: Cents,
    pub stripe_id: Option<String>,
    pub stripe_refund_id: Option<String>,
    /// Why it failed, as shown to the buyer.
    pub failure: Option<String>,
    pub created_at_ms: u64,
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

/// The order's latest charge, if any.
pub fn charge_of(store: &impl KeyValue, order_id: &str) -> StoreResult<Option<Charge>> {
    let Some(id) = store.get(ORDER_CHARGES, order_id)? else { return Ok(None) };
    store.get_json(CHARGES, &String::from_utf8_lossy(&id))
}

/// Takes the order's current payment attempt; false when another request has it.
pub fn claim_attempt(store: &impl KeyValue, order_id: &str) -> StoreResult<bool> {
    let attempt = store.counter(CHARGE_ATTEMPTS, order_id)?;
    store.claim(CHARGE_CLAIMS, &format!("{order_id}#{attempt}"))
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
