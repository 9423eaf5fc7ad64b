//! The pages against a scripted API.

use std::cell::RefCell;

use serde_json::{json, Value};
use ticketing_common::api::{OrderTicketView, OrderView, TicketView};
use ticketing_common::events::OrderStatus;
use ticketing_common::http::{Request, Response};
use ticketing_common::money::Cents;
use ticketing_common::session::SessionKeys;
use ticketing_common::testing::TEST_KEY;
use ticketing_common::time::Timestamp;

use crate::api::{Api, ApiReply};
use crate::pages::{handle, Site};
use crate::security::HEADERS;

/// Answers by (method, path); records what was asked.
#[derive(Default)]
struct Scripted {
    answers: Vec<(&'static str, String, u16, Value, Vec<String>, Option<String>)>,
    calls: RefCell<Vec<(String, String, Option<Value>)>>,
    down: bool,
}

impl Scripted {
    fn signed_in() -> Self {
        Self::default().on("GET", "/api/users/currentuser", 200, json!({"currentUser": {"id": "u1", "email": "a@b.com", "iat": 1}}))
    }

    fn anonymous() -> Self {
        Self::default().on("GET", "/api/users/currentuser", 200, json!({"currentUser": null}))
    }

    fn on(mut self, method: &'static str, path: &str, status: u16, body: Value) -> Self {
        self.answers.push((method, path.to_string(), status, body, Vec::new(), None));
        self
    }

    /// The last answer says there is a next page, at `cursor`.
    fn with_next(mut self, cursor: &str) -> Self {
        self.answers.last_mut().unwrap().5 = Some(cursor.to_string());
        self
    }

    fn with_cookie(mut self, cookie: &str) -> Self {
        self.answers.last_mut().unwrap().4.push(cookie.to_string());
        self
    }
}

impl Api for Scripted {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<ApiReply, String> {
        if self.down {
            return Err("connection refused".into());
        }
        self.calls.borrow_mut().push((method.into(), path.into(), body.cloned()));
        let (_, _, status, body, cookies, next) = self
            .answers
            .iter()
            .find(|(m, p, ..)| *m == method && p == path)
            .unwrap_or_else(|| panic!("unexpected call {method} {path}"));
        Ok(ApiReply { status: *status, set_cookies: cookies.clone(), body: body.clone(), next_cursor: next.clone() })
    }
}

const NOW: u64 = 1_795_428_900_000; // 2026-11-23T10:15:00Z
const ORDER: &str = "5ec00000aaaaaaaaaaaaaaaa";
const TICKET: &str = "5ec00000bbbbbbbbbbbbbbbb";

/// Ticket `TICKET` as the tickets service answers it.
fn ticket(title: &str, cents: u64, order: Option<&str>) -> Value {
    let view = TicketView { id: TICKET.into(), title: title.into(), price: Cents(cents), user_id: "u1".into(), version: 0, order_id: order.map(Into::into) };
    serde_json::to_value(view).unwrap()
}

/// Order `ORDER` of a ticket `title` as the orders service answers it.
fn order_json(status: &str, expires_at: &str, title: &str, cents: u64) -> Value {
    let view = OrderView {
        id: ORDER.into(),
        user_id: "u1".into(),
        status: OrderStatus::parse(status).unwrap(),
        expires_at: Timestamp::parse_iso8601(expires_at).unwrap(),
        ticket: Some(OrderTicketView { id: TICKET.into(), title: title.into(), price: Cents(cents), version: 0 }),
        version: 0,
    };
    serde_json::to_value(view).unwrap()
}

const EXPIRES: &str = "2026-11-23T10:16:00.000Z";

fn get(api: &Scripted, path: &str) -> (u16, String, Response) {
    send(api, Request::new("GET", path))
}

fn post(api: &Scripted, path: &str, form: &str) -> (u16, String, Response) {
    send(api, Request::new("POST", path).with_header("content-type", "application/x-www-form-urlencoded").with_body(form.as_bytes().to_vec()))
}

fn send(api: &Scripted, request: Request) -> (u16, String, Response) {
    let site = Site { api, sessions: None, stripe_key: "", now: Timestamp::from_millis(NOW) };
    let response = handle(&site, &request);
    (response.status, String::from_utf8(response.body.clone()).unwrap(), response)
}

#[test]
fn the_landing_page_lists_tickets_and_the_header_follows_the_session() {
    let tickets = json!([ticket("Rock <night>", 2050, None)]);
    let (status, html, _) = get(&Scripted::anonymous().on("GET", "/api/tickets", 200, tickets.clone()), "/");
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Tickets</h1>"));
    assert!(html.contains("Rock &#60;night&#62;") && !html.contains("Rock <night>"), "titles are escaped");
    assert!(html.contains("$20.50") && html.contains(&format!("href=\"/tickets/{TICKET}\"")));
    assert!(html.contains("Sign Up") && !html.contains("Sign Out"));
    let (_, html, _) = get(&Scripted::signed_in().on("GET", "/api/tickets", 200, tickets), "/");
    assert!(html.contains("Sell Tickets") && html.contains("My Orders") && html.contains("Sign Out"));
}

/// With the session keys the header comes from the cookie: no `currentuser` call (the
/// scripted API has no answer for it), and a forged or expired cookie is nobody.
#[test]
fn with_the_session_keys_the_header_reads_the_cookie_itself() {
    let keys = SessionKeys::new(TEST_KEY, 3600).unwrap();
    let api = Scripted::default().on("GET", "/api/tickets", 200, json!([]));
    let page = |cookie: &str| {
        let site = Site { api: &api, sessions: Some(&keys), stripe_key: "", now: Timestamp::from_millis(NOW) };
        let response = handle(&site, &Request::new("GET", "/").with_header("cookie", cookie));
        (response.status, String::from_utf8(response.body).unwrap())
    };
    let issued = Timestamp::from_millis(NOW - 60_000);
    let (status, html) = page(&format!("session={}", keys.issue("u1", "cookie@test.com", issued)));
    assert_eq!(status, 200);
    assert!(html.contains("cookie@test.com") && html.contains("Sign Out"), "{html}");
    let stale = Timestamp::from_millis(NOW - 2 * 3_600_000);
    for cookie in ["session=forged".to_string(), format!("session={}", keys.issue("u1", "old@test.com", stale))] {
        let (status, html) = page(&cookie);
        assert_eq!(status, 200);
        assert!(html.contains("Sign Up") && !html.contains("Sign Out"), "{cookie}: {html}");
    }
    assert!(api.calls.borrow().iter().all(|(_, path, _)| path != "/api/users/currentuser"));
}

#[test]
fn the_landing_page_links_to_the_next_page_with_the_apis_cursor() {
    let tickets = json!([ticket("Newest", 100, None)]);
    let api = Scripted::anonymous().on("GET", "/api/tickets", 200, tickets).with_next("41.a0ff");
    let (status, html, _) = get(&api, "/");
    assert_eq!(status, 200);
    assert!(html.contains(r#"<a href="/?cursor=41.a0ff" rel="next">"#), "{html}");
    assert!(!html.contains("rel=\"first\""), "the first page has no link to itself");

    let older = json!([ticket("Oldest", 100, None)]);
    let api = Scripted::anonymous().on("GET", "/api/tickets?cursor=41.a0ff", 200, older);
    let (status, html, _) = get(&api, "/?cursor=41.a0ff");
    assert_eq!(status, 200);
    assert!(html.contains("Oldest") && !html.contains("rel=\"next\""), "the last page");
    assert!(html.contains(r#"<a href="/" rel="first">"#));
}

#[test]
fn a_page_address_is_passed_on_encoded_and_a_refused_one_is_a_400() {
    let refused = json!({"errors": [{"message": "cursor is not valid", "field": "cursor"}]});
    let api = Scripted::anonymous().on("GET", "/api/tickets?cursor=x%26limit%3D1000", 400, refused);
    let (status, html, _) = get(&api, "/?cursor=x%26limit%3D1000");
    assert_eq!(status, 400);
    assert!(html.contains("not valid any more"));
}

#[test]
fn my_orders_pages_like_the_landing_page() {
    let orders = json!([order_json("created", EXPIRES, "Concert", 2000)]);
    let api = Scripted::signed_in().on("GET", "/api/orders?cursor=12", 200, orders).with_next("2");
    let (status, html, _) = get(&api, "/orders?cursor=12");
    assert_eq!(status, 200);
    assert!(html.contains(r#"<a href="/orders?cursor=2" rel="next">"#) && html.contains(r#"<a href="/orders" rel="first">"#), "{html}");
}

#[test]
fn signing_in_redirects_home_with_the_session_cookie() {
    let api = Scripted::anonymous().on("POST", "/api/users/signin", 200, json!({"id": "u1", "email": "a@b.com"})).with_cookie("session=abc; Path=/; HttpOnly");
    let (status, _, response) = post(&api, "/auth/signin", "email=a%40b.com&password=secret");
    assert_eq!((status, response.header("location")), (303, Some("/")));
    assert_eq!(response.header("set-cookie"), Some("session=abc; Path=/; HttpOnly"));
    assert_eq!(api.calls.borrow()[1].2, Some(json!({"email": "a@b.com", "password": "secret"})));
}

#[test]
fn api_errors_are_shown_next_to_the_form_with_the_input_kept() {
    let api = Scripted::anonymous().on("POST", "/api/users/signup", 400, json!({"errors": [{"message": "Email must be valid", "field": "email"}]}));
    let (status, html, _) = post(&api, "/auth/signup", "email=nope&password=x");
    assert_eq!(status, 400);
    assert!(html.contains("role=\"alert\"") && html.contains("<li>Email must be valid</li>"));
    assert!(html.contains("value=\"nope\""), "the e-mail is kept");
}

#[test]
fn selling_sends_the_price_as_typed_and_needs_a_session() {
    let (status, _, response) = get(&Scripted::anonymous(), "/tickets/new");
    assert_eq!((status, response.header("location")), (303, Some("/auth/signin")));
    let api = Scripted::signed_in().on("POST", "/api/tickets", 201, json!({"id": TICKET}));
    let (status, _, response) = post(&api, "/tickets/new", "title=Concert&price=10.00");
    assert_eq!((status, response.header("location")), (303, Some("/")));
    assert_eq!(api.calls.borrow()[1].2, Some(json!({"title": "Concert", "price": "10.00"})));
}

#[test]
fn purchase_goes_to_the_order_or_shows_why_not() {
    let api = Scripted::signed_in().on("POST", "/api/orders", 201, order_json("created", EXPIRES, "Concert", 1000));
    let (status, _, response) = post(&api, &format!("/tickets/{TICKET}/purchase"), "");
    assert_eq!((status, response.header("location")), (303, Some(format!("/orders/{ORDER}").as_str())));
    let api = Scripted::signed_in()
        .on("POST", "/api/orders", 400, json!({"errors": [{"message": "Ticket is already reserved"}]}))
        .on("GET", &format!("/api/tickets/{TICKET}"), 200, ticket("Concert", 1000, Some(ORDER)));
    let (status, html, _) = post(&api, &format!("/tickets/{TICKET}/purchase"), "");
    assert_eq!(status, 400);
    assert!(html.contains("Ticket is already reserved") && html.contains("<h1>Concert</h1>"));
}

#[test]
fn the_order_page_counts_down_and_offers_test_cards() {
    let order = order_json("created", "2026-11-23T10:16:00.000Z", "Concert", 2000);
    let api = Scripted::signed_in().on("GET", &format!("/api/orders/{ORDER}"), 200, order);
    let (status, html, _) = get(&api, &format!("/orders/{ORDER}"));
    assert_eq!(status, 200);
    assert!(html.contains("Time left to pay: <strong id=\"seconds-left\">60</strong> seconds"), "{html}");
    assert!(html.contains("data-expires-at=\"2026-11-23T10:16:00.000Z\""));
    assert!(html.contains("value=\"tok_visa\"") && html.contains("test mode"));
    assert!(html.contains("Pay $20.00"));
}

#[test]
fn an_expired_or_paid_order_has_no_payment_form() {
    for (status, expires, text) in [("created", "2026-11-23T10:14:00.000Z", "Order Expired"), ("cancelled", "2026-11-23T10:16:00.000Z", "Order Expired"), ("complete", "2026-11-23T10:16:00.000Z", "Paid.")] {
        let order = order_json(status, expires, "Concert", 2000);
        let (_, html, _) = get(&Scripted::signed_in().on("GET", &format!("/api/orders/{ORDER}"), 200, order), &format!("/orders/{ORDER}"));
        assert!(html.contains(text) && !html.contains("Pay With Card"), "{status}");
    }
}

#[test]
fn paying_goes_to_my_orders_or_shows_the_decline() {
    let api = Scripted::signed_in().on("POST", "/api/payments", 201, json!({"id": "p1"}));
    let (status, _, response) = post(&api, &format!("/orders/{ORDER}/pay"), "token=tok_visa");
    assert_eq!((status, response.header("location")), (303, Some("/orders")));
    assert_eq!(api.calls.borrow()[1].2, Some(json!({"orderId": ORDER, "token": "tok_visa"})));
    let order = order_json("created", "2026-11-23T10:16:00.000Z", "Concert", 2000);
    let api = Scripted::signed_in()
        .on("POST", "/api/payments", 400, json!({"errors": [{"message": "Your card was declined."}]}))
        .on("GET", &format!("/api/orders/{ORDER}"), 200, order);
    let (status, html, _) = post(&api, &format!("/orders/{ORDER}/pay"), "token=tok_chargeDeclined");
    assert_eq!(status, 400);
    assert!(html.contains("Your card was declined."));
    // The decline has cancelled the order by the time the page asks for it.
    let cancelled = order_json("cancelled", "2026-11-23T10:16:00.000Z", "Concert", 2000);
    let api = Scripted::signed_in()
        .on("POST", "/api/payments", 400, json!({"errors": [{"message": "Your card was declined."}]}))
        .on("GET", &format!("/api/orders/{ORDER}"), 200, cancelled);
    let (status, html, _) = post(&api, &format!("/orders/{ORDER}/pay"), "token=tok_chargeDeclined");
    assert_eq!(status, 400);
    assert!(html.contains("Order Expired") && html.contains("role=\"alert\"") && html.contains("Your card was declined."), "{html}");
}

#[test]
fn my_orders_lists_title_and_status() {
    let orders = json!([order_json("complete", EXPIRES, "Concert", 2000)]);
    let (_, html, _) = get(&Scripted::signed_in().on("GET", "/api/orders", 200, orders), "/orders");
    assert!(html.contains(&format!("<a href=\"/orders/{ORDER}\">Concert</a> - <span class=\"status-complete\">complete</span>")), "{html}");
}

#[test]
fn signing_out_is_a_form_post_that_clears_the_cookie() {
    let api = Scripted::signed_in().on("POST", "/api/users/signout", 200, json!({})).with_cookie("session=; Max-Age=0; Path=/");
    let (status, _, response) = post(&api, "/auth/signout", "");
    assert_eq!((status, response.header("set-cookie")), (303, Some("session=; Max-Age=0; Path=/")));
    let (_, html, _) = get(&Scripted::signed_in(), "/nowhere");
    assert!(html.contains(r#"<form method="post" action="/auth/signout"><button type="submit" class="link">Sign Out</button></form>"#), "{html}");
    // The address alone (a link from anywhere) only offers the form.
    let api = Scripted::signed_in();
    let (status, html, response) = get(&api, "/auth/signout");
    assert_eq!((status, response.header("set-cookie")), (200, None));
    assert!(html.contains("Signed in as a@b.com.") && html.matches("action=\"/auth/signout\"").count() == 2);
    assert_eq!(api.calls.borrow().len(), 1, "only the current user was asked");
}

#[test]
fn unknown_pages_are_404_and_a_silent_api_is_503() {
    assert_eq!(get(&Scripted::anonymous(), "/nowhere").0, 404);
    let (status, body, response) = get(&Scripted::anonymous(), "/api/nothing-here");
    assert_eq!((status, body.as_str(), response.header("content-type")), (404, r#"{"errors":[{"message":"Not Found"}]}"#, Some("application/json")));
    assert_eq!(get(&Scripted::anonymous(), "/tickets/not-an-id").0, 404);
    let down = Scripted { down: true, ..Scripted::default() };
    let (status, html, _) = get(&down, "/");
    assert_eq!(status, 503);
    assert!(html.contains("Temporarily unavailable"));
    assert_eq!(get(&down, "/static/app.css").0, 200, "assets need no API");
}

/// A signed-in user's API with an answer for every page, so any page can be rendered.
fn every_page_api() -> Scripted {
    let order = order_json("created", "2026-11-23T10:16:00.000Z", "Concert", 2000);
    Scripted::signed_in()
        .on("GET", "/api/tickets", 200, json!([ticket("Concert", 2000, None)]))
        .with_next("1.a") // the pager is checked too
        .on("GET", &format!("/api/tickets/{TICKET}"), 200, ticket("Concert", 2000, None))
        .on("GET", &format!("/api/orders/{ORDER}"), 200, order)
        .on("GET", "/api/orders", 200, json!([order_json("created", EXPIRES, "Concert", 2000)]))
}

const PAGES: [&str; 10] = ["/", "/auth/signup", "/auth/signin", "/auth/signout", "/tickets/new", "/tickets/5ec00000bbbbbbbbbbbbbbbb", "/orders/5ec00000aaaaaaaaaaaaaaaa", "/orders", "/nowhere", "/static/app.js"];

#[test]
fn every_response_carries_the_security_headers() {
    let api = every_page_api();
    let mut responses: Vec<(String, Response)> = PAGES.iter().map(|path| (path.to_string(), get(&api, path).2)).collect();
    responses.push(("css".into(), get(&api, "/static/app.css").2));
    responses.push(("redirect".into(), get(&Scripted::anonymous(), "/orders").2));
    responses.push(("api 404".into(), get(&api, "/api/nothing").2));
    responses.push(("503".into(), get(&Scripted { down: true, ..Scripted::default() }, "/").2));
    responses.push(("refused".into(), send(&api, Request::new("POST", "/tickets/new").with_header("sec-fetch-site", "cross-site")).2));
    for (what, response) in responses {
        for (name, value) in HEADERS {
            assert_eq!(response.header(name), Some(value), "{what}: {name}");
        }
    }
}

#[test]
fn pages_have_no_inline_script_style_or_handlers() {
    let api = every_page_api();
    for path in PAGES.iter().filter(|p| !p.starts_with("/static")) {
        let (_, html, _) = get(&api, path);
        let lower = html.to_ascii_lowercase();
        assert_eq!(lower.matches("<script").count(), 1, "{path}: one script");
        assert!(lower.contains(r#"<script src="/static/app.js" defer></script>"#), "{path}");
        assert!(!lower.contains("javascript:") && !lower.contains("style=") && !lower.contains("<style"), "{path}");
        let handler = lower.split(|c: char| c.is_whitespace()).find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(handler, None, "{path}: inline event handler");
    }
}

#[test]
fn a_form_post_from_another_site_is_refused_and_changes_nothing() {
    let posts = [("/auth/signup", "email=a%40b.com&password=pw12"), ("/auth/signin", "email=a%40b.com&password=pw12"), ("/auth/signout", ""), ("/tickets/new", "title=T&price=1"), ("/tickets/5ec00000bbbbbbbbbbbbbbbb/purchase", ""), ("/orders/5ec00000aaaaaaaaaaaaaaaa/pay", "token=tok_visa")];
    let cross_site = [("sec-fetch-site", "cross-site", None), ("sec-fetch-site", "same-site", None), ("origin", "http://evil.example", Some("127.0.0.1:8000"))];
    for (path, form) in posts {
        for (name, value, host) in cross_site {
            // No API answer is scripted: any call at all would fail the test.
            let api = Scripted::default();
            let mut request = Request::new("POST", path).with_header(name, value).with_body(form.as_bytes().to_vec());
            if let Some(host) = host {
                request = request.with_header("host", host);
            }
            let (status, html, response) = send(&api, request);
            assert_eq!(status, 403, "{path} {name}: {value}");
            assert!(html.contains("Form refused") && html.contains("sent from another website"), "{path}");
            assert_eq!((response.header("location"), response.header("set-cookie")), (None, None));
            assert!(api.calls.borrow().is_empty(), "{path}: the API was called");
        }
    }
}

#[test]
fn a_form_post_from_our_own_pages_goes_through() {
    let api = Scripted::signed_in().on("POST", "/api/tickets", 201, json!({"id": TICKET}));
    let own = Request::new("POST", "/tickets/new").with_header("sec-fetch-site", "same-origin").with_body(b"title=T&price=1".to_vec());
    assert_eq!(send(&api, own).0, 303);
    let old_browser = Request::new("POST", "/tickets/new").with_header("origin", "http://127.0.0.1:8000").with_header("host", "127.0.0.1:8000").with_body(b"title=T&price=1".to_vec());
    assert_eq!(send(&api, old_browser).0, 303);
    // A cross-site link (a GET) to a page still works.
    let (status, _, _) = send(&every_page_api(), Request::new("GET", "/").with_header("sec-fetch-site", "cross-site"));
    assert_eq!(status, 200);
}
