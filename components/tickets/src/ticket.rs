//! A ticket and its rules: what a listing must hold, what its seller may change, and how
//! an order reserves and releases it. Plain values in, plain values out: `routes` and
//! `listeners` load and store around these decisions.

use serde::{Deserialize, Serialize};
use ticketing_common::api::TicketView;
use ticketing_common::events::{TicketCreated, TicketUpdated};
use ticketing_common::ids::{OrderId, TicketId, UserId};
use ticketing_common::money::{Cents, PriceError};
use ticketing_common::validate::{Body, Validation};
use ticketing_common::ApiError;

/// Longest title accepted: titles are shown in every list and page.
pub const MAX_TITLE_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: TicketId,
    pub title: String,
    pub price: Cents,
    pub user_id: UserId,
    pub version: u64,
    /// The order holding the ticket, while it is reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

/// What a seller writes when listing or editing a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub title: String,
    pub price: Cents,
}

impl Listing {
    /// Title and price of a create or update body, every failing field reported;
    /// `price_message` differs between the two as in the reference app.
    pub fn parse(body: &Body, price_message: &str) -> Result<Listing, ApiError> {
        let title = body.trimmed("title");
        let price = Cents::parse_price(body.value("price"));
        let mut v = Validation::new();
        v.check(!title.is_empty(), "title", "Title is required");
        v.max_chars(&title, MAX_TITLE_CHARS, "title", "Title");
        match price {
            Ok(_) => {}
            Err(PriceError::NotPositive) => {
                v.check(false, "price", price_message);
            }
            Err(PriceError::TooPrecise) => {
                v.check(false, "price", "Price must have at most 2 decimal places");
            }
            Err(PriceError::TooLarge) => {
                v.check(false, "price", "Price must be at most 999999.99");
            }
        }
        v.finish()?;
        Ok(Listing { title, price: price.expect("validated above") })
    }
}

/// What an `order:created` means for the ticket it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The ticket's next version, held by the order.
    Reserve(Ticket),
    /// Already held by this order (a redelivery): nothing to change.
    AlreadyHeld,
    /// Held by another order: not now (the other may be released first).
    HeldByOther(OrderId),
}

impl Ticket {
    /// A new listing `id` by `seller`, version 0.
    pub fn list(id: TicketId, listing: Listing, seller: UserId) -> Ticket {
        Ticket { id, title: listing.title, price: listing.price, user_id: seller, version: 0, order_id: None }
    }

    /// The ticket's next version with `listing`, if `editor` may make it: checked in the
    /// reference order, reserved (400) before ownership (401).
    pub fn edit(self, editor: &UserId, listing: Listing) -> Result<Ticket, ApiError> {
        if self.order_id.is_some() {
            return Err(ApiError::bad_request("Cannot edit a reserved ticket"));
        }
        if self.user_id != *editor {
            return Err(ApiError::not_authorized());
        }
        Ok(Ticket { title: listing.title, price: listing.price, version: self.version + 1, ..self })
    }

    pub fn reserve(self, order_id: &OrderId) -> Reservation {
        match &self.order_id {
            Some(holder) if holder == order_id => Reservation::AlreadyHeld,
            Some(other) => Reservation::HeldByOther(other.clone()),
            None => Reservation::Reserve(Ticket { order_id: Some(order_id.clone()), version: self.version + 1, ..self }),
        }
    }

    /// The ticket's next version, free again, if `order_id` holds it (a cancellation of
    /// another or an earlier order changes nothing).
    pub fn release(self, order_id: &OrderId) -> Option<Ticket> {
        (self.order_id.as_ref() == Some(order_id)).then(|| Ticket { order_id: None, version: self.version + 1, ..self })
    }

    /// The ticket as the API shows it.
    pub fn view(&self) -> TicketView {
        TicketView {
            id: self.id.clone(),
            title: self.title.clone(),
            price: self.price,
            user_id: self.user_id.clone(),
            version: self.version,
            order_id: self.order_id.clone(),
        }
    }

    pub fn is_for_sale(&self) -> bool {
        self.order_id.is_none()
    }

    pub fn created_event(&self) -> TicketCreated {
        TicketCreated {
            id: self.id.clone(),
            version: self.version,
            title: self.title.clone(),
            price: self.price,
            user_id: self.user_id.clone(),
        }
    }

    pub fn updated_event(&self) -> TicketUpdated {
        TicketUpdated {
            id: self.id.clone(),
            version: self.version,
            title: self.title.clone(),
            price: self.price,
            user_id: self.user_id.clone(),
            order_id: self.order_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket::list(TicketId::generate(), Listing { title: "concert".into(), price: Cents(2000) }, "alice".into())
    }

    fn user(id: &str) -> UserId {
        UserId::from(id)
    }

    fn order(id: &str) -> OrderId {
        OrderId::from(id)
    }

    #[test]
    fn only_the_seller_edits_and_only_while_it_is_for_sale() {
        let edit = || Listing { title: "new".into(), price: Cents(100) };
        let edited = ticket().edit(&user("alice"), edit()).unwrap();
        assert_eq!((edited.title.as_str(), edited.price, edited.version), ("new", Cents(100), 1));
        assert_eq!(ticket().edit(&user("bob"), edit()).unwrap_err().status, 401);
        let Reservation::Reserve(reserved) = ticket().reserve(&order("o1")) else { panic!("free ticket") };
        assert_eq!(reserved.clone().edit(&user("bob"), edit()).unwrap_err().status, 400, "reserved before ownership");
    }

    #[test]
    fn one_order_holds_it_until_that_order_releases_it() {
        let Reservation::Reserve(held) = ticket().reserve(&order("o1")) else { panic!("free ticket") };
        assert_eq!((held.order_id.as_deref(), held.version, held.is_for_sale()), (Some("o1"), 1, false));
        assert_eq!(held.clone().reserve(&order("o1")), Reservation::AlreadyHeld);
        assert_eq!(held.clone().reserve(&order("o2")), Reservation::HeldByOther(order("o1")));
        assert_eq!(held.clone().release(&order("o2")), None, "not the holder");
        let free = held.release(&order("o1")).unwrap();
        assert_eq!((free.order_id, free.version), (None, 2));
    }
}
