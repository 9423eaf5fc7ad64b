//! The pages' templates (`templates/`, compiled into the component by askama).

use askama::Template;

/// The signed-in state shown in the header.
pub struct Header {
    pub email: String,
    pub signed_in: bool,
}

pub struct TicketRow {
    pub id: String,
    pub title: String,
    pub price: String,
}

pub struct OrderRow {
    pub id: String,
    pub title: String,
    pub status: String,
}

/// The links between the pages of a list (`templates/pager.html`).
pub struct Pager {
    /// The first (newest) page, when this is a later one.
    pub first: Option<String>,
    /// The next (older) page, when there is one.
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "landing.html")]
pub struct Landing<'a> {
    pub header: &'a Header,
    pub tickets: Vec<TicketRow>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "auth.html")]
pub struct AuthForm<'a> {
    pub header: &'a Header,
    pub heading: &'a str,
    pub action: &'a str,
    pub email: String,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "new_ticket.html")]
pub struct NewTicket<'a> {
    pub header: &'a Header,
    pub title: String,
    pub price: String,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "ticket.html")]
pub struct TicketPage<'a> {
    pub header: &'a Header,
    pub ticket: TicketRow,
    pub reserved: bool,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "order.html")]
pub struct OrderPage<'a> {
    pub header: &'a Header,
    pub order: OrderRow,
    pub price: String,
    pub expires_at: String,
    pub seconds_left: i64,
    /// A Stripe publishable key: the card is collected by Stripe.js. Without one the page
    /// offers stripe-mock's test cards.
    pub stripe_key: String,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "orders.html")]
pub struct OrdersPage<'a> {
    pub header: &'a Header,
    pub orders: Vec<OrderRow>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub header: &'a Header,
    pub heading: &'a str,
    pub text: &'a str,
}

#[derive(Template)]
#[template(path = "signout.html")]
pub struct SignOutPage<'a> {
    pub header: &'a Header,
}
