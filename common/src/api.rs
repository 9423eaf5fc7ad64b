//! The JSON the API answers with, as types: the services write these and the web client
//! reads them, so the two cannot drift apart. Field names are the reference app's
//! (camelCase); `api/openapi.json` describes the same shapes for other clients.

use serde::{Deserialize, Serialize};

use crate::events::OrderStatus;
use crate::ids::{OrderId, TicketId, UserId};
use crate::money::Cents;
use crate::session::CurrentUser;
use crate::time::Timestamp;
use crate::validate::Email;

/// `GET /api/users/currentuser`: `{currentUser: {id, email, iat} | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUserReply {
    pub current_user: Option<CurrentUser>,
}

/// A user as sign-up and sign-in answer: `{id, email}`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub email: Email,
}

/// A ticket: `{id, title, price, userId, version, orderId?}` (`orderId` while reserved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub id: TicketId,
    pub title: String,
    pub price: Cents,
    pub user_id: UserId,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

/// An order with its ticket: `{id, userId, status, expiresAt, ticket, version}`;
/// `ticket` is `null` while orders has not heard of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    #[serde(with = "crate::time::as_iso8601")]
    pub expires_at: Timestamp,
    pub ticket: Option<OrderTicketView>,
    pub version: u64,
}

/// The ticket of an order: `{id, title, price, version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTicketView {
    pub id: TicketId,
    pub title: String,
    pub price: Cents,
    pub version: u64,
}

/// A payment made: `{id}` (the charge's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_are_the_reference_apps() {
        let order = OrderView {
            id: "o1".into(),
            user_id: "u1".into(),
            status: OrderStatus::AwaitingPayment,
            expires_at: Timestamp::from_millis(1_795_428_900_000),
            ticket: Some(OrderTicketView { id: "t1".into(), title: "concert".into(), price: Cents(2050), version: 1 }),
            version: 2,
        };
        let json = json!({"id": "o1", "userId": "u1", "status": "awaiting:payment", "expiresAt": "2026-11-23T10:15:00.000Z",
                          "ticket": {"id": "t1", "title": "concert", "price": 20.5, "version": 1}, "version": 2});
        assert_eq!(serde_json::to_value(&order).unwrap(), json);
        assert_eq!(serde_json::from_value::<OrderView>(json).unwrap(), order);
        let ticket = TicketView { id: "t1".into(), title: "x".into(), price: Cents(100), user_id: "u1".into(), version: 0, order_id: None };
        assert_eq!(serde_json::to_value(&ticket).unwrap(), json!({"id": "t1", "title": "x", "price": 1, "userId": "u1", "version": 0}));
        assert_eq!(serde_json::to_value(CurrentUserReply { current_user: None }).unwrap(), json!({"currentUser": null}));
    }
}
