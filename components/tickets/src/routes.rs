//! HTTP routes of the tickets service (`/api/tickets*`), reference §2.2.

use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::idempotency::{self, Work};
use ticketing_common::ids::{TicketId, UserId};
use ticketing_common::paging::{page_response, Paging};
use ticketing_common::session::{configured, SessionKeys};
use ticketing_common::store::KeyValue;
use ticketing_common::time::Timestamp;
use ticketing_common::validate::Body;
use ticketing_common::ApiError;

use crate::for_sale;
use crate::store;
use crate::ticket::{Listing, Ticket};

pub struct Ctx<'a, S: KeyValue> {
    pub store: &'a S,
    pub keys: Option<&'a SessionKeys>,
    pub now: Timestamp,
}

impl<S: KeyValue> Ctx<'_, S> {
    fn user_id(&self, request: &Request) -> Result<UserId, ApiError> {
        Ok(configured(self.keys)?.require_user(request, self.now)?.id)
    }
}

pub fn handle<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> Response {
    respond(route(ctx, request))
}

fn route<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    match (request.method.as_str(), request.segments().as_slice()) {
        ("POST", ["api", "tickets"]) => {
            let user_id = ctx.user_id(request)?;
            idempotency::once(ctx.store, configured(ctx.keys)?, ctx.now, &user_id, request, |work| {
                create(ctx, request, user_id.clone(), work)
            })
        }
        ("GET", ["api", "tickets"]) => list(ctx, request),
        ("GET", ["api", "tickets", id]) => show(ctx, id),
        ("PUT", ["api", "tickets", id]) => update(ctx, request, id),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /api/tickets {title, price}` by `user_id` → 201 ticket `work.id`, announced with
/// `ticket:created`. When an earlier attempt of the same request (same `Idempotency-Key`,
/// so same id) stored it already, that is the answer.
fn create<S: KeyValue>(ctx: &Ctx<S>, request: &Request, user_id: UserId, work: &Work) -> HandlerResult {
    let listing = Listing::parse(&Body::parse(request)?, "Price must be greater than 0")?;
    let id = TicketId::from(work.id.as_str());
    if work.resumed {
        if let Some(ticket) = store::find(ctx.store, &id)?.filter(|t| t.user_id == user_id) {
            return Ok(Response::json(201, &ticket.view()));
        }
    }
    let ticket = Ticket::list(id, listing, user_id);
    store::insert(ctx.store, &ticket)?;
    Ok(Response::json(201, &ticket.view()))
}

/// `GET /api/tickets[?limit=&cursor=]` → a page of the tickets that are not reserved,
/// newest first, from the index of tickets for sale; the next page's cursor in headers.
fn list<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let paging = Paging::from_request(request, for_sale::parse_cursor)?;
    let (tickets, next) = for_sale::page(ctx.store, paging.cursor.as_ref(), paging.limit)?;
    let views: Vec<_> = tickets.iter().map(Ticket::view).collect();
    Ok(page_response(request, paging.limit, &views, next.map(|p| p.to_string()).as_deref()))
}

/// `GET /api/tickets/:id`
fn show<S: KeyValue>(ctx: &Ctx<S>, id: &str) -> HandlerResult {
    let ticket = store::find(ctx.store, &TicketId::parse(id)?)?.ok_or_else(ApiError::not_found)?;
    Ok(Response::json(200, &ticket.view()))
}

/// `PUT /api/tickets/:id {title, price}`: checks in the reference order: signed in,
/// valid body, exists, not reserved, owned. Publishes `ticket:updated`.
fn update<S: KeyValue>(ctx: &Ctx<S>, request: &Request, id: &str) -> HandlerResult {
    let user_id = ctx.user_id(request)?;
    let listing = Listing::parse(&Body::parse(request)?, "Price must be provided and must be greater than 0")?;
    let ticket = store::find(ctx.store, &TicketId::parse(id)?)?.ok_or_else(ApiError::not_found)?;
    let next = ticket.edit(&user_id, listing)?;
    if store::save_next(ctx.store, &next)?.is_err() {
        return Err(ApiError::new(409, "The ticket changed meanwhile, please try again"));
    }
    Ok(Response::json(200, &next.view()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::testing::FlakyStore;
    use crate::ticket::MAX_TITLE_CHARS;
    use ticketing_common::money::Cents;
    use serde_json::{json, Value};
    use ticketing_common::store::{JsonStore, MemoryStore};
    use ticketing_common::testing::{request, status_and_json, TEST_KEY as KEY, ALICE, BOB, NOWHERE};


    struct World {
        store: MemoryStore,
        keys: SessionKeys,
    }

    impl World {
        fn new() -> Self {
            Self { store: MemoryStore::default(), keys: SessionKeys::new(KEY, 3600).unwrap() }
        }

        fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> (u16, Value) {
            let request = request(method, path, user.map(|u| (&self.keys, u, 1000)), body.as_ref());
            let ctx = Ctx { store: &self.store, keys: Some(&self.keys), now: Timestamp::from_seconds(1001) };
            status_and_json(&handle(&ctx, &request))
        }

        fn create(&self, user: &str, title: &str, price: Value) -> Value {
            let (status, body) = self.call("POST", "/api/tickets", Some(user), Some(json!({"title": title, "price": price})));
            assert_eq!(status, 201, "{body}");
            body
        }

        fn published(&self) -> Vec<String> {
            self.store.take_announced_subjects()
        }
    }


    #[test]
    fn cases_13_to_15_create_needs_a_session_before_validation() {
        let w = World::new();
        assert_eq!(w.call("POST", "/api/tickets", None, Some(json!({}))).0, 401);
        assert_eq!(w.call("POST", "/api/tickets", Some(ALICE), Some(json!({}))).0, 400);
    }

    #[test]
    fn cases_16_17_invalid_title_or_price() {
        let w = World::new();
        for body in [json!({"title": "", "price": 10}), json!({"price": 10})] {
            let (status, res) = w.call("POST", "/api/tickets", Some(ALICE), Some(body));
            assert_eq!((status, &res["errors"][0]), (400, &json!({"message": "Title is required", "field": "title"})));
        }
        for body in [json!({"title": "t", "price": -10}), json!({"title": "t"}), json!({"title": "t", "price": "abc"})] {
            let (status, res) = w.call("POST", "/api/tickets", Some(ALICE), Some(body));
            assert_eq!((status, &res["errors"][0]), (400, &json!({"message": "Price must be greater than 0", "field": "price"})));
        }
        let (_, res) = w.call("POST", "/api/tickets", Some(ALICE), Some(json!({"title": "t", "price": 1.234})));
        assert_eq!(res["errors"][0]["message"], "Price must have at most 2 decimal places");
        let (status, res) = w.call("POST", "/api/tickets", Some(ALICE), Some(json!({"title": "t", "price": 1_000_000})));
        assert_eq!((status, &res["errors"][0]), (400, &json!({"message": "Price must be at most 999999.99", "field": "price"})));
        assert_eq!(w.call("POST", "/api/tickets", Some(ALICE), Some(json!({"title": "t", "price": "1e300"}))).0, 400);
        assert!(store::all(&w.store).unwrap().is_empty());
        assert!(w.published().is_empty());
    }

    #[test]
    fn titles_are_bounded_on_create_and_update_and_change_nothing() {
        let w = World::new();
        let id = w.create(ALICE, "concert", json!(20))["id"].as_str().unwrap().to_string();
        w.published();
        let longest = "é".repeat(MAX_TITLE_CHARS);
        let too_long = json!({"title": format!("{longest}x"), "price": 10});
        let refused = json!({"errors": [{"message": "Title must be at most 100 characters", "field": "title"}]});
        assert_eq!(w.call("POST", "/api/tickets", Some(ALICE), Some(too_long.clone())), (400, refused.clone()));
        assert_eq!(w.call("PUT", &format!("/api/tickets/{id}"), Some(ALICE), Some(too_long)), (400, refused));
        assert_eq!(store::all(&w.store).unwrap().len(), 1);
        assert_eq!(store::find(&w.store, &id).unwrap().unwrap().title, "concert");
        assert!(w.published().is_empty());

        let padded = format!("  {longest}  ");
        assert_eq!(w.create(ALICE, &padded, json!(10))["title"], json!(longest), "counted after trimming");
    }

    #[test]
    fn a_body_over_16_kib_is_a_413() {
        let w = World::new();
        let (status, res) = w.call("POST", "/api/tickets", Some(ALICE), Some(json!({"title": "x".repeat(200_000), "price": 10})));
        assert_eq!((status, res), (413, json!({"errors": [{"message": "Request body is too large"}]})));
        assert!(store::all(&w.store).unwrap().is_empty());
    }

    #[test]
    fn cases_18_19_create_stores_and_publishes() {
        let w = World::new();
        let ticket = w.create(ALICE, "concert", json!("20.00"));
        assert_eq!(ticket["title"], "concert");
        assert_eq!(ticket["price"], json!(20));
        assert_eq!(ticket["userId"], ALICE);
        assert_eq!(ticket["version"], 0);
        assert!(ticket.get("orderId").is_none());
        assert_eq!(store::all(&w.store).unwrap().len(), 1);
        assert_eq!(w.published(), vec!["ticket:created"]);
    }

    #[test]
    fn cases_20_21_show() {
        let w = World::new();
        assert_eq!(w.call("GET", &format!("/api/tickets/{NOWHERE}"), None, None).0, 404);
        assert_eq!(w.call("GET", "/api/tickets/not-an-id", None, None).0, 400);
        let id = w.create(ALICE, "concert", json!(20.5))["id"].as_str().unwrap().to_string();
        let (status, ticket) = w.call("GET", &format!("/api/tickets/{id}"), None, None);
        assert_eq!((status, ticket["title"].clone(), ticket["price"].clone()), (200, json!("concert"), json!(20.5)));
    }

    #[test]
    fn case_22_list_hides_reserved_tickets() {
        let w = World::new();
        for title in ["a", "b", "c"] {
            w.create(ALICE, title, json!(10));
        }
        let (status, list) = w.call("GET", "/api/tickets", None, None);
        assert_eq!((status, list.as_array().unwrap().len()), (200, 3));
        let mut reserved = store::all(&w.store).unwrap().remove(0);
        reserved.order_id = Some("o1".into());
        w.store.set_json(store::TICKETS, &reserved.id, &reserved).unwrap();
        assert_eq!(w.call("GET", "/api/tickets", None, None).1.as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_list_is_newest_first() {
        let w = World::new();
        for (second, title) in [(1_795_000_001u64, "old"), (1_795_000_300, "new"), (1_795_000_100, "middle")] {
            let id = ticketing_common::ids::id_from_parts(second, [7; 8]);
            store::insert(&w.store, &Ticket { id: id.into(), title: title.into(), price: Cents(100), user_id: ALICE.into(), version: 0, order_id: None }).unwrap();
        }
        let (_, list) = w.call("GET", "/api/tickets", None, None);
        let titles: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["new", "middle", "old"]);
    }

    #[test]
    fn the_list_is_paged_with_the_cursor_in_headers() {
        let w = World::new();
        let ids: Vec<String> = (0..5).map(|i| w.create(ALICE, &format!("t{i}"), json!(10))["id"].as_str().unwrap().to_string()).collect();
        let request = |path: &str| {
            let ctx = Ctx { store: &w.store, keys: Some(&w.keys), now: Timestamp::from_seconds(1001) };
            handle(&ctx, &Request::new("GET", path))
        };
        let first = request("/api/tickets?limit=2");
        let cursor = first.header("x-next-cursor").expect("a next page").to_string();
        assert_eq!(first.header("link"), Some(format!("</api/tickets?limit=2&cursor={cursor}>; rel=\"next\"").as_str()));
        let mut walked: Vec<Value> = serde_json::from_slice::<Vec<Value>>(&first.body).unwrap();
        let second = request(&format!("/api/tickets?limit=2&cursor={cursor}"));
        walked.extend(serde_json::from_slice::<Vec<Value>>(&second.body).unwrap());
        let third = request(&format!("/api/tickets?limit=2&cursor={}", second.header("x-next-cursor").unwrap()));
        assert_eq!(third.header("x-next-cursor"), None, "the last page");
        walked.extend(serde_json::from_slice::<Vec<Value>>(&third.body).unwrap());
        let mut newest_first = ids.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(walked.iter().map(|t| t["id"].as_str().unwrap()).collect::<Vec<_>>(), newest_first);

        let (status, all) = w.call("GET", "/api/tickets", None, None);
        assert_eq!((status, all.as_array().unwrap().len()), (200, 5), "no parameters: the first page, a plain array");
    }

    #[test]
    fn bad_paging_parameters_are_a_400_naming_them() {
        let w = World::new();
        for (query, field) in [("limit=101", "limit"), ("limit=0", "limit"), ("limit=x", "limit"), ("cursor=bogus", "cursor"), ("cursor=", "cursor"), ("cursor=5.xyz", "cursor")] {
            let (status, body) = w.call("GET", &format!("/api/tickets?{query}"), None, None);
            assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some(field)), "{query}");
        }
        assert!(!w.store.exists(for_sale::FOR_SALE, for_sale::BACKFILLED).unwrap(), "a refused request reads and writes nothing");
    }

    #[test]
    fn cases_23_to_29_update_rules_in_order() {
        let w = World::new();
        let valid = json!({"title": "new title", "price": 100});
        assert_eq!(w.call("PUT", &format!("/api/tickets/{NOWHERE}"), Some(ALICE), Some(valid.clone())).0, 404);
        assert_eq!(w.call("PUT", &format!("/api/tickets/{NOWHERE}"), None, Some(valid.clone())).0, 401);
        assert_eq!(w.call("PUT", &format!("/api/tickets/{NOWHERE}"), Some(ALICE), Some(json!({"title": ""}))).0, 400, "validation before lookup");

        let id = w.create(ALICE, "concert", json!(20))["id"].as_str().unwrap().to_string();
        let path = format!("/api/tickets/{id}");
        assert_eq!(w.call("PUT", &path, Some(BOB), Some(valid.clone())).0, 401);
        let (status, res) = w.call("PUT", &path, Some(ALICE), Some(json!({"title": "x", "price": -10})));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Price must be provided and must be greater than 0")));

        let (status, updated) = w.call("PUT", &path, Some(ALICE), Some(valid.clone()));
        assert_eq!((status, updated["title"].clone(), updated["price"].clone(), updated["version"].clone()), (200, json!("new title"), json!(100), json!(1)));
        assert_eq!(w.call("GET", &path, None, None).1["title"], "new title");
        assert_eq!(w.published(), vec!["ticket:created", "ticket:updated"]);

        let mut reserved = store::find(&w.store, &id).unwrap().unwrap();
        reserved.order_id = Some("o1".into());
        w.store.set_json(store::TICKETS, &id, &reserved).unwrap();
        let (status, res) = w.call("PUT", &path, Some(ALICE), Some(valid.clone()));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Cannot edit a reserved ticket")));
        assert_eq!(w.call("PUT", &path, Some(BOB), Some(valid)).0, 400, "reserved is checked before ownership");
        assert!(w.published().is_empty());
    }

    #[test]
    fn an_edit_that_loses_the_version_race_is_a_409_and_changes_nothing() {
        let w = World::new();
        let id = w.create(ALICE, "concert", json!(20))["id"].as_str().unwrap().to_string();
        ticketing_common::lease::take(&w.store, store::VERSION_CLAIMS, &format!("{id}@1"), Timestamp::now()).unwrap(); // a reservation is storing version 1
        let (status, _) = w.call("PUT", &format!("/api/tickets/{id}"), Some(ALICE), Some(json!({"title": "x", "price": 1})));
        assert_eq!(status, 409);
        assert_eq!(store::find(&w.store, &id).unwrap().unwrap().title, "concert");
    }

    #[test]
    fn unknown_routes_are_404() {
        let w = World::new();
        assert_eq!(w.call("DELETE", "/api/tickets", None, None).0, 404);
        assert_eq!(w.call("GET", "/api/tickets/a/b", None, None).0, 404);
    }

    /// A create by Alice with an `Idempotency-Key`.
    fn create_with_key(w: &World, key: &str, body: Value) -> (u16, Value) {
        let request = request("POST", "/api/tickets", Some((&w.keys, ALICE, 1000)), Some(&body)).with_header("Idempotency-Key", key);
        let ctx = Ctx { store: &w.store, keys: Some(&w.keys), now: Timestamp::from_seconds(1001) };
        status_and_json(&handle(&ctx, &request))
    }

    #[test]
    fn a_create_retried_with_its_idempotency_key_makes_one_ticket() {
        let w = World::new();
        let body = json!({"title": "concert", "price": 20});
        let first = create_with_key(&w, "retry-1", body.clone());
        let again = create_with_key(&w, "retry-1", body.clone());
        assert_eq!(first.0, 201);
        assert_eq!(again, first, "the same ticket");
        assert_eq!(store::all(&w.store).unwrap().len(), 1);
        assert_eq!(w.published(), vec!["ticket:created"], "announced once");

        let (status, res) = create_with_key(&w, "retry-1", json!({"title": "other", "price": 20}));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (422, Some("This Idempotency-Key was used with another request")));
        let (status, res) = create_with_key(&w, "", body.clone());
        assert_eq!((status, res["errors"][0]["field"].as_str()), (400, Some("Idempotency-Key")));
        assert_eq!(create_with_key(&w, "retry-2", body.clone()).0, 201, "a new key is a new ticket");
        w.create(ALICE, "concert", json!(20));
        assert_eq!(store::all(&w.store).unwrap().len(), 3, "without a key, every create counts");
    }

    #[test]
    fn a_create_whose_answer_was_lost_is_taken_over_without_a_second_ticket() {
        let keys = SessionKeys::new(KEY, 3600).unwrap();
        let body = json!({"title": "concert", "price": 20});
        let create = |store: &FlakyStore, at: u64| {
            let request = request("POST", "/api/tickets", Some((&keys, ALICE, at)), Some(&body)).with_header("Idempotency-Key", "k");
            status_and_json(&handle(&Ctx { store, keys: Some(&keys), now: Timestamp::from_seconds(at) }, &request))
        };
        let probe = FlakyStore::default();
        create(&probe, 1000);
        let store = FlakyStore::default();
        store.fail_write(probe.writes()); // the ticket is stored, its answer is not kept
        let (status, first) = create(&store, 1000);
        assert_eq!(status, 201);
        assert_eq!(create(&store, 1001).0, 409, "maybe still running");
        let later = 1000 + ticketing_common::idempotency::UNFINISHED_AFTER_MS / 1000 + 1;
        let (status, again) = create(&store, later);
        assert_eq!((status, &again["id"]), (201, &first["id"]), "taken over: the ticket the first attempt stored");
        assert_eq!(store::all(&store.inner).unwrap().len(), 1);
    }

    #[test]
    fn idempotency_keys_are_per_user() {
        let w = World::new();
        let body = json!({"title": "concert", "price": 20});
        let alice = create_with_key(&w, "k", body.clone());
        let request = request("POST", "/api/tickets", Some((&w.keys, BOB, 1000)), Some(&body)).with_header("Idempotency-Key", "k");
        let ctx = Ctx { store: &w.store, keys: Some(&w.keys), now: Timestamp::from_seconds(1001) };
        let bob = status_and_json(&handle(&ctx, &request));
        assert_eq!((alice.0, bob.0), (201, 201));
        assert_ne!(alice.1["id"], bob.1["id"]);
        assert_eq!(bob.1["userId"], BOB);
    }
}
