//! An order and its rules: placing one, how long it holds its ticket, which changes each
//! status allows (cancel, expire, complete), and the replica of tickets kept in version
//! order. Plain values in, plain values out: `routes` and `listeners` load and store
//! around these decisions.

use serde::{Deserialize, Serialize};
use ticketing_common::api::{OrderTicketView, OrderView};
use ticketing_common::events::{OrderCancelled, OrderCreated, OrderStatus, OrderTicket, TicketRef, TicketUpdated};
use ticketing_common::ids::{OrderId, TicketId, UserId};
use ticketing_common::money::Cents;
use ticketing_common::time::Timestamp;
use ticketing_common::ApiError;

/// How long an order holds its ticket unless configured otherwise.
pub const DEFAULT_WINDOW_SECONDS: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    #[serde(with = "ticketing_common::time::as_iso8601")]
    pub expires_at: Timestamp,
    pub ticket_id: TicketId,
    pub version: u64,
}

/// What orders knows of a ticket (from `ticket:created` / `ticket:updated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReplica {
    pub id: TicketId,
    pub title: String,
    pub price: Cents,
    pub version: u64,
}

/// What a `ticket:updated` means for the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaUpdate {
    /// The next version: store it.
    Apply(TicketReplica),
    /// That version (or a later one) is applied already: a duplicate.
    Seen,
    /// An earlier update has not arrived yet: try again later.
    Gap { have: u64 },
}

impl TicketReplica {
    pub fn update(self, event: &TicketUpdated) -> ReplicaUpdate {
        if event.version <= self.version {
            ReplicaUpdate::Seen
        } else if event.version != self.version + 1 {
            ReplicaUpdate::Gap { have: self.version }
        } else {
            ReplicaUpdate::Apply(TicketReplica { title: event.title.clone(), price: event.price, version: event.version, ..self })
        }
    }
}

impl Order {
    /// A new order `id` by `buyer` holding `ticket` for `window_seconds` from `now`.
    pub fn place(id: OrderId, buyer: UserId, ticket: &TicketReplica, now: Timestamp, window_seconds: u64) -> Order {
        Order {
            id,
            user_id: buyer,
            status: OrderStatus::Created,
            expires_at: now.plus_seconds(window_seconds),
            ticket_id: ticket.id.clone(),
            version: 0,
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.status, OrderStatus::Created | OrderStatus::AwaitingPayment)
    }

    /// The buyer cancels: the next version, cancelled; `None` when it is cancelled
    /// already (nothing to do); a paid order cannot be cancelled.
    pub fn cancel_by_buyer(self) -> Result<Option<Order>, ApiError> {
        match self.status {
            OrderStatus::Cancelled => Ok(None),
            OrderStatus::Complete => Err(ApiError::bad_request("Cannot cancel a completed order")),
            OrderStatus::Created | OrderStatus::AwaitingPayment => Ok(Some(self.into_status(OrderStatus::Cancelled))),
        }
    }

    /// The order ends unpaid (its time ran out, or the card was declined): the next
    /// version, cancelled, unless it is paid or cancelled already.
    pub fn end_unpaid(self) -> Option<Order> {
        self.is_open().then(|| self.into_status(OrderStatus::Cancelled))
    }

    /// The payment arrived: the next version, complete, unless the order ended first
    /// (payments refunds such a charge).
    pub fn complete(self) -> Option<Order> {
        self.is_open().then(|| self.into_status(OrderStatus::Complete))
    }

    fn into_status(self, status: OrderStatus) -> Order {
        Order { status, version: self.version + 1, ..self }
    }

    /// The order as the API shows it, with its ticket from the replica (`null` while the
    /// replica has not heard of it).
    pub fn view(&self, ticket: Option<&TicketReplica>) -> OrderView {
        OrderView {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            status: self.status,
            expires_at: self.expires_at,
            ticket: ticket.map(|t| OrderTicketView { id: t.id.clone(), title: t.title.clone(), price: t.price, version: t.version }),
            version: self.version,
        }
    }

    pub fn created_event(&self, ticket: &TicketReplica) -> OrderCreated {
        OrderCreated {
            id: self.id.clone(),
            version: self.version,
            status: self.status,
            user_id: self.user_id.clone(),
            expires_at: self.expires_at,
            ticket: OrderTicket { id: ticket.id.clone(), price: ticket.price },
        }
    }

    pub fn cancelled_event(&self) -> OrderCancelled {
        OrderCancelled { id: self.id.clone(), version: self.version, ticket: TicketRef { id: self.ticket_id.clone() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> TicketReplica {
        TicketReplica { id: "t1".into(), title: "concert".into(), price: Cents(2000), version: 0 }
    }

    fn order(status: OrderStatus) -> Order {
        Order { status, ..Order::place(OrderId::generate(), "u1".into(), &ticket(), Timestamp::from_millis(1_795_428_000_000), 900) }
    }

    #[test]
    fn a_new_order_holds_its_ticket_for_the_window() {
        let placed = Order::place(OrderId::generate(), "u1".into(), &ticket(), Timestamp::from_millis(1_795_428_900_000), 900);
        assert_eq!((placed.status, placed.version, placed.ticket_id.as_str()), (OrderStatus::Created, 0, "t1"));
        assert_eq!(serde_json::to_value(&placed).unwrap()["expiresAt"], "2026-11-23T10:30:00.000Z");
    }

    #[test]
    fn each_status_allows_its_own_changes() {
        let cancelled = order(OrderStatus::Created).cancel_by_buyer().unwrap().unwrap();
        assert_eq!((cancelled.status, cancelled.version), (OrderStatus::Cancelled, 1));
        assert_eq!(order(OrderStatus::Cancelled).cancel_by_buyer().unwrap(), None);
        assert_eq!(order(OrderStatus::Complete).cancel_by_buyer().unwrap_err().status, 400);
        for open in [OrderStatus::Created, OrderStatus::AwaitingPayment] {
            assert_eq!(order(open).end_unpaid().unwrap().status, OrderStatus::Cancelled);
            assert_eq!(order(open).complete().unwrap().status, OrderStatus::Complete);
        }
        for ended in [OrderStatus::Complete, OrderStatus::Cancelled] {
            assert_eq!(order(ended).end_unpaid(), None);
            assert_eq!(order(ended).complete(), None);
        }
    }

    #[test]
    fn the_replica_takes_updates_in_version_order_only() {
        let update = |version| TicketUpdated { id: "t1".into(), version, title: "new".into(), price: Cents(5), user_id: "u".into(), order_id: None };
        let ReplicaUpdate::Apply(next) = ticket().update(&update(1)) else { panic!("next version") };
        assert_eq!((next.title.as_str(), next.version), ("new", 1));
        assert_eq!(next.clone().update(&update(1)), ReplicaUpdate::Seen);
        assert_eq!(next.update(&update(3)), ReplicaUpdate::Gap { have: 1 });
    }
}
