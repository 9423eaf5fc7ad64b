//! The pages: each route calls the API with the browser's session and renders HTML.
//! Forms post here and redirect (post/redirect/get), so everything works without
//! JavaScript; API errors are shown next to the form with the API's messages.

use askama::Template;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use ticketing_common::api::{CurrentUserReply, OrderView, TicketView};
use ticketing_common::http::{Request, Response};
use ticketing_common::ids::is_valid_id;
use ticketing_common::money::Cents;
use ticketing_common::session::SessionKeys;
use ticketing_common::time::Timestamp;

use crate::api::{Api, ApiReply};
use crate::form::Form;
use crate::security;
use crate::views::*;

pub struct Site<'a, A: Api> {
    pub api: &'a A,
    /// The session keys (secret `jwt_key`): with them the header reads the session cookie
    /// here, as auth's `currentuser` does, instead of asking auth on every page.
    pub sessions: Option<&'a SessionKeys>,
    /// Stripe publishable key (`pk_...`), or "" for stripe-mock's test cards.
    pub stripe_key: &'a str,
    pub now: Timestamp,
}

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");
/// The API's OpenAPI description, served at `/api/openapi.json` (web answers every path
/// no service claims, so the description lives here, next to the API's catch-all 404).
const OPENAPI: &str = include_str!("../../../api/openapi.json");

/// Every response of the web component comes from here, with the security headers; a
/// form post from another site's page is refused before any page sees it.
pub fn handle<A: Api>(site: &Site<A>, request: &Request) -> Response {
    security::with_security_headers(route(site, request))
}

fn route<A: Api>(site: &Site<A>, request: &Request) -> Response {
    let segments = request.segments();
    let anonymous = Header { email: String::new(), signed_in: false };
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["api", "openapi.json"]) => asset(OPENAPI, "application/json"),
        // An API path no service serves reaches us as the catch-all: answer as the API does.
        (_, ["api", ..]) => Response::from(ticketing_common::ApiError::not_found()),
        ("GET", ["static", "app.css"]) => asset(CSS, "text/css; charset=utf-8"),
        ("GET", ["static", "app.js"]) => asset(JS, "text/javascript; charset=utf-8"),
        _ if security::is_cross_origin_write(request) => html(403, &MessagePage {
            header: &anonymous,
            heading: "Form refused",
            text: "This form was sent from another website, so nothing was done. If you meant to do this, go to GitTix yourself and try again there.",
        }),
        _ => match page(site, request, &segments) {
            Ok(response) => response,
            Err(Unavailable) => html(503, &MessagePage { header: &anonymous, heading: "Temporarily unavailable", text: "The service could not answer. Please try again in a moment." }),
        },
    }
}

/// The API did not answer.
struct Unavailable;

type PageResult = Result<Response, Unavailable>;

fn page<A: Api>(site: &Site<A>, request: &Request, segments: &[&str]) -> PageResult {
    let header = current_user(site, request)?;
    let form = || Form::parse(&request.body);
    match (request.method.as_str(), segments) {
        ("GET", []) => landing(site, &header, request),
        ("GET", ["auth", "signup"]) => Ok(html(200, &auth_form(&header, AuthKind::SignUp, String::new(), Vec::new()))),
        ("POST", ["auth", "signup"]) => authenticate(site, &header, AuthKind::SignUp, form()),
        ("GET", ["auth", "signin"]) => Ok(html(200, &auth_form(&header, AuthKind::SignIn, String::new(), Vec::new()))),
        ("POST", ["auth", "signin"]) => authenticate(site, &header, AuthKind::SignIn, form()),
        // Signing out changes state, so it is a form post (checked like every post); the
        // address alone shows the form.
        ("GET", ["auth", "signout"]) => Ok(html(200, &SignOutPage { header: &header })),
        ("POST", ["auth", "signout"]) => sign_out(site),
        ("GET", ["tickets", "new"]) if !header.signed_in => Ok(redirect("/auth/signin", Vec::new())),
        ("GET", ["tickets", "new"]) => Ok(html(200, &NewTicket { header: &header, title: String::new(), price: String::new(), errors: Vec::new() })),
        ("POST", ["tickets", "new"]) => sell(site, &header, form()),
        ("GET", ["tickets", id]) if is_valid_id(id) => ticket_page(site, &header, id, Vec::new(), 200),
        ("POST", ["tickets", id, "purchase"]) if is_valid_id(id) => purchase(site, &header, id),
        ("GET", ["orders"]) if !header.signed_in => Ok(redirect("/auth/signin", Vec::new())),
        ("GET", ["orders"]) => my_orders(site, &header, request),
        ("GET", ["orders", id]) if is_valid_id(id) => order_page(site, &header, id, Vec::new(), 200),
        ("POST", ["orders", id, "pay"]) if is_valid_id(id) => pay(site, &header, id, form()),
        _ => Ok(not_found(&header)),
    }
}

/// Who is signed in: read from the session cookie when this component has the session
/// keys (saving a call per page), else asked of auth.
fn current_user<A: Api>(site: &Site<A>, request: &Request) -> Result<Header, Unavailable> {
    let user = match site.sessions {
        Some(keys) => keys.current_user(request, site.now),
        None => call(site, "GET", "/api/users/currentuser", None)?.read::<CurrentUserReply>().and_then(|r| r.current_user),
    };
    Ok(match user {
        Some(user) => Header { email: user.email, signed_in: true },
        None => Header { email: String::new(), signed_in: false },
    })
}

fn call<A: Api>(site: &Site<A>, method: &str, path: &str, body: Option<&Value>) -> Result<ApiReply, Unavailable> {
    let reply = site.api.call(method, path, body).map_err(|_| Unavailable)?;
    if reply.status >= 500 {
        return Err(Unavailable);
    }
    Ok(reply)
}

/// A page of a paged API list: `?cursor=` of the page's own address goes to the API,
/// and the API's next cursor becomes the page's "Next" link.
struct ListPage<T> {
    items: Vec<T>,
    pager: Pager,
}

/// Reads the page of `api_path` that `request` asks for; `None` when the API refused
/// the cursor (a stale or edited address).
fn list_page<A: Api, T: DeserializeOwned>(site: &Site<A>, request: &Request, api_path: &str) -> Result<Option<ListPage<T>>, Unavailable> {
    let encode = |cursor: &str| form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>();
    let cursor = request.query_param("cursor");
    let path = match &cursor {
        Some(cursor) => format!("{api_path}?cursor={}", encode(cursor)),
        None => api_path.to_string(),
    };
    let reply = call(site, "GET", &path, None)?;
    let Some(items) = reply.read::<Vec<T>>().filter(|_| reply.ok()) else {
        return Ok(None);
    };
    Ok(Some(ListPage {
        items,
        pager: Pager {
            first: cursor.is_some().then(|| request.path.clone()),
            next: reply.next_cursor.as_deref().map(|next| format!("{}?cursor={}", request.path, encode(next))),
        },
    }))
}

fn bad_page_link(header: &Header) -> Response {
    html(400, &MessagePage { header, heading: "Page not found", text: "This page address is not valid any more. Start again from the first page." })
}

fn landing<A: Api>(site: &Site<A>, header: &Header, request: &Request) -> PageResult {
    let Some(page) = list_page::<A, TicketView>(site, request, "/api/tickets")? else { return Ok(bad_page_link(header)) };
    let tickets = page.items.iter().map(ticket_row).collect();
    Ok(html(200, &Landing { header, tickets, pager: page.pager }))
}

#[derive(Clone, Copy)]
enum AuthKind {
    SignUp,
    SignIn,
}

fn auth_form<'a>(header: &'a Header, kind: AuthKind, email: String, errors: Vec<String>) -> AuthForm<'a> {
    let (heading, action) = match kind {
        AuthKind::SignUp => ("Sign Up", "/auth/signup"),
        AuthKind::SignIn => ("Sign In", "/auth/signin"),
    };
    AuthForm { header, heading, action, email, errors }
}

fn authenticate<A: Api>(site: &Site<A>, header: &Header, kind: AuthKind, form: Form) -> PageResult {
    let path = match kind {
        AuthKind::SignUp => "/api/users/signup",
        AuthKind::SignIn => "/api/users/signin",
    };
    let email = form.get("email");
    let reply = call(site, "POST", path, Some(&json!({ "email": email, "password": form.get("password") })))?;
    if reply.ok() {
        return Ok(redirect("/", reply.set_cookies));
    }
    Ok(html(400, &auth_form(header, kind, email, reply.messages())))
}

fn sign_out<A: Api>(site: &Site<A>) -> PageResult {
    let reply = call(site, "POST", "/api/users/signout", Some(&json!({})))?;
    Ok(redirect("/", reply.set_cookies))
}

fn sell<A: Api>(site: &Site<A>, header: &Header, form: Form) -> PageResult {
    let (title, price) = (form.get("title"), form.get("price"));
    // The price goes as typed (a string), as the reference client does; the API validates it.
    let reply = call(site, "POST", "/api/tickets", Some(&json!({ "title": title, "price": price })))?;
    if reply.ok() {
        return Ok(redirect("/", Vec::new()));
    }
    Ok(html(400, &NewTicket { header, title, price, errors: reply.messages() }))
}

fn ticket_page<A: Api>(site: &Site<A>, header: &Header, id: &str, errors: Vec<String>, status: u16) -> PageResult {
    let reply = call(site, "GET", &format!("/api/tickets/{id}"), None)?;
    let Some(ticket) = reply.read::<TicketView>().filter(|_| reply.ok()) else {
        return Ok(not_found(header));
    };
    let reserved = ticket.order_id.is_some();
    Ok(html(status, &TicketPage { header, ticket: ticket_row(&ticket), reserved, errors }))
}

fn purchase<A: Api>(site: &Site<A>, header: &Header, ticket_id: &str) -> PageResult {
    let reply = call(site, "POST", "/api/orders", Some(&json!({ "ticketId": ticket_id })))?;
    match reply.read::<OrderView>() {
        Some(order) if reply.ok() => Ok(redirect(&format!("/orders/{}", order.id), Vec::new())),
        _ => ticket_page(site, header, ticket_id, reply.messages(), 400),
    }
}

fn my_orders<A: Api>(site: &Site<A>, header: &Header, request: &Request) -> PageResult {
    let Some(page) = list_page::<A, OrderView>(site, request, "/api/orders")? else { return Ok(bad_page_link(header)) };
    let orders = page.items.iter().map(order_row).collect();
    Ok(html(200, &OrdersPage { header, orders, pager: page.pager }))
}

fn order_page<A: Api>(site: &Site<A>, header: &Header, id: &str, errors: Vec<String>, status: u16) -> PageResult {
    if !header.signed_in {
        return Ok(redirect("/auth/signin", Vec::new()));
    }
    let reply = call(site, "GET", &format!("/api/orders/{id}"), None)?;
    let Some(order) = reply.read::<OrderView>().filter(|_| reply.ok()) else {
        return Ok(not_found(header));
    };
    let left_ms = order.expires_at.millis() as i64 - site.now.millis() as i64;
    Ok(html(status, &OrderPage {
        header,
        order: order_row(&order),
        price: order.ticket.as_ref().map(|t| price_text(t.price)).unwrap_or_default(),
        expires_at: order.expires_at.to_iso8601(),
        seconds_left: (left_ms + 999) / 1000,
        stripe_key: site.stripe_key.to_string(),
        errors,
    }))
}

fn pay<A: Api>(site: &Site<A>, header: &Header, order_id: &str, form: Form) -> PageResult {
    let reply = call(site, "POST", "/api/payments", Some(&json!({ "orderId": order_id, "token": form.get("token") })))?;
    if reply.ok() {
        return Ok(redirect("/orders", Vec::new()));
    }
    order_page(site, header, order_id, reply.messages(), 400)
}

fn ticket_row(ticket: &TicketView) -> TicketRow {
    TicketRow { id: ticket.id.to_string(), title: ticket.title.clone(), price: price_text(ticket.price) }
}

fn order_row(order: &OrderView) -> OrderRow {
    OrderRow {
        id: order.id.to_string(),
        title: order.ticket.as_ref().map_or("(ticket)", |t| t.title.as_str()).to_string(),
        status: order.status.as_str().to_string(),
    }
}

/// 2050 cents → `20.50`.
fn price_text(price: Cents) -> String {
    format!("{}.{:02}", price.0 / 100, price.0 % 100)
}

fn not_found(header: &Header) -> Response {
    html(404, &MessagePage { header, heading: "Not Found", text: "There is nothing at this address." })
}

fn html(status: u16, page: &impl Template) -> Response {
    let body = page.render().unwrap_or_else(|e| format!("<!doctype html><p>Page error: {e}</p>"));
    Response { status, headers: vec![("content-type".into(), "text/html; charset=utf-8".into())], body: body.into_bytes() }
}

fn asset(text: &str, content_type: &str) -> Response {
    Response { status: 200, headers: vec![("content-type".into(), content_type.into()), ("cache-control".into(), "max-age=300".into())], body: text.as_bytes().to_vec() }
}

/// A 303 to `to`, passing on the API's cookies (sign in, sign out).
fn redirect(to: &str, set_cookies: Vec<String>) -> Response {
    let mut response = Response::empty(303).with_header("location", to);
    for cookie in set_cookies {
        response = response.with_header("set-cookie", &cookie);
    }
    response
}
