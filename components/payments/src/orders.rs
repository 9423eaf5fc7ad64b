//! The orders service as payments asks it, component to component: an order's status
//! right now. Payments' own replica of an order follows events and may lag behind (an
//! order cancelled a moment ago), so the status is confirmed with orders just before a
//! card is charged.

use ticketing_common::events::OrderStatus;

pub trait OrderLookup {
    /// The order's status now; `None` when orders knows no such order; `Err` when
    /// orders could not be asked.
    fn current_status(&self, order_id: &str) -> Result<Option<OrderStatus>, String>;
}
