//! HTTP routes of the orders service (`/api/orders*`), reference §2.3.

use ticketing_common::api::OrderView;
use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::idempotency::{self, Work};
use ticketing_common::ids::{is_valid_id, OrderId, UserId};
use ticketing_common::paging::{page_response, Paging};
use ticketing_common::session::{configured, SessionKeys};
use ticketing_common::store::KeyValue;
use ticketing_common::time::Timestamp;
use ticketing_common::validate::{Body, Validation};
use ticketing_common::ApiError;

use crate::order::{Order, TicketReplica};
use crate::store;

pub struct Ctx<'a, S: KeyValue> {
    pub store: &'a S,
    pub keys: Option<&'a SessionKeys>,
    pub now: Timestamp,
    pub window_seconds: u64,
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
        ("POST", ["api", "orders"]) => {
            let user_id = ctx.user_id(request)?;
            idempotency::once(ctx.store, configured(ctx.keys)?, ctx.now, &user_id, request, |work| {
                create(ctx, request, user_id.clone(), work)
            })
        }
        ("GET", ["api", "orders"]) => list(ctx, request),
        ("GET", ["api", "orders", id]) => show(ctx, request, id),
        ("DELETE", ["api", "orders", id]) => cancel(ctx, request, id),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /api/orders {ticketId}` by `user_id` → 201 order `id` holding the ticket until
/// `expiresAt`, announced with `order:created`. When an earlier attempt of the same
/// request (same `Idempotency-Key`, so same `id`) stored the order already, that is the
/// answer.
fn create<S: KeyValue>(ctx: &Ctx<S>, request: &Request, user_id: UserId, work: &Work) -> HandlerResult {
    let body = Body::parse(request)?;
    let ticket_id = body.str("ticketId").unwrap_or_default().trim().to_string();
    let mut v = Validation::new();
    v.check(!ticket_id.is_empty(), "ticketId", "Invalid value");
    v.check(is_valid_id(&ticket_id), "ticketId", "TicketId must be provided");
    v.finish()?;

    let ticket = store::ticket(ctx.store, &ticket_id)?.ok_or_else(ApiError::not_found)?;
    let id = OrderId::from(work.id.as_str());
    if work.resumed {
        if let Some(order) = store::order(ctx.store, &id)?.filter(|o| o.user_id == user_id) {
            return Ok(Response::json(201, &order.view(Some(&ticket))));
        }
    }
    if !store::claim_ticket(ctx.store, &ticket.id, &id, ctx.now)? {
        return Err(ApiError::bad_request("Ticket is already reserved"));
    }
    let order = Order::place(id, user_id, &ticket, ctx.now, ctx.window_seconds);
    // Indexed first: an entry whose order failed to store is skipped in lists, while an
    // order stored (and announced) must keep its claim.
    if let Err(e) = store::index_for_user(ctx.store, &order).and_then(|()| store::insert_order(ctx.store, &order, &ticket)) {
        let _ = store::release_claim(ctx.store, &ticket.id);
        return Err(e.into());
    }
    Ok(Response::json(201, &order.view(Some(&ticket))))
}

/// `GET /api/orders[?limit=&cursor=]` → a page of the signed-in user's orders, newest
/// first, any status; the next page's cursor in headers.
fn list<S: KeyValue>(ctx: &Ctx<S>, request: &Request) -> HandlerResult {
    let user_id = ctx.user_id(request)?;
    let paging = Paging::from_request(request, store::parse_cursor)?;
    let (orders, next) = store::orders_page(ctx.store, &user_id, paging.cursor, paging.limit)?;
    let ticket_ids: Vec<String> = orders.iter().map(|o| o.ticket_id.to_string()).collect();
    let tickets: Vec<Option<TicketReplica>> = ctx
        .store
        .get_many(store::TICKETS, &ticket_ids)?
        .into_iter()
        .map(|bytes| bytes.and_then(|b| serde_json::from_slice(&b).ok()))
        .collect();
    let views: Vec<OrderView> = orders.iter().zip(&tickets).map(|(o, t)| o.view(t.as_ref())).collect();
    Ok(page_response(request, paging.limit, &views, next.map(|n| n.to_string()).as_deref()))
}

/// The caller's order `id`: 400 malformed, 404 unknown, 401 someone else's.
fn own_order<S: KeyValue>(ctx: &Ctx<S>, request: &Request, id: &str) -> Result<Order, ApiError> {
    let user_id = ctx.user_id(request)?;
    let order = store::order(ctx.store, &OrderId::parse(id)?)?.ok_or_else(ApiError::not_found)?;
    if order.user_id != user_id {
        return Err(ApiError::not_authorized());
    }
    Ok(order)
}

/// `GET /api/orders/:id`
fn show<S: KeyValue>(ctx: &Ctx<S>, request: &Request, id: &str) -> HandlerResult {
    let order = own_order(ctx, request, id)?;
    let ticket = store::ticket(ctx.store, &order.ticket_id)?;
    Ok(Response::json(200, &order.view(ticket.as_ref())))
}

/// `DELETE /api/orders/:id` → 204; the order is kept as `cancelled` and the ticket
/// released (`order:cancelled`). A paid order cannot be cancelled.
fn cancel<S: KeyValue>(ctx: &Ctx<S>, request: &Request, id: &str) -> HandlerResult {
    let Some(cancelled) = own_order(ctx, request, id)?.cancel_by_buyer()? else {
        return Ok(Response::empty(204));
    };
    match store::save_next(ctx.store, &cancelled)? {
        Ok(()) => Ok(Response::empty(204)),
        Err(store::Conflict) => Err(ApiError::new(409, "The order changed meanwhile, please try again")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::events::OrderStatus;
    use ticketing_common::money::Cents;
    use serde_json::{json, Value};
    use ticketing_common::store::{JsonStore, MemoryStore};
    use ticketing_common::testing::FlakyStore;
    use ticketing_common::testing::{request, status_and_json, TEST_KEY as KEY, ALICE, BOB, NOWHERE};

    const NOW_MS: u64 = 1_795_428_900_000; // 2026-11-23T10:15:00Z

    struct World {
        store: MemoryStore,
        keys: SessionKeys,
    }

    impl World {
        fn new() -> Self {
            let w = Self { store: MemoryStore::default(), keys: SessionKeys::new(KEY, 3600).unwrap() };
            for (i, title) in ["concert", "match", "play"].iter().enumerate() {
                let id = format!("5ec0000{i}dddddddddddddddd");
                store::put_ticket(&w.store, &TicketReplica { id: id.into(), title: title.to_string(), price: Cents(2000), version: 0 }).unwrap();
            }
            w
        }

        fn ticket(i: usize) -> String {
            format!("5ec0000{i}dddddddddddddddd")
        }

        fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> (u16, Value) {
            let request = request(method, path, user.map(|u| (&self.keys, u, NOW_MS / 1000)), body.as_ref());
            let ctx = Ctx { store: &self.store, keys: Some(&self.keys), now: Timestamp::from_millis(NOW_MS), window_seconds: 900 };
            status_and_json(&handle(&ctx, &request))
        }

        fn order(&self, user: &str, ticket: usize) -> (u16, Value) {
            self.call("POST", "/api/orders", Some(user), Some(json!({"ticketId": Self::ticket(ticket)})))
        }
    }

    #[test]
    fn every_route_needs_a_session() {
        let w = World::new();
        assert_eq!(w.call("POST", "/api/orders", None, Some(json!({"ticketId": World::ticket(0)}))).0, 401);
        assert_eq!(w.call("GET", "/api/orders", None, None).0, 401);
        assert_eq!(w.call("GET", &format!("/api/orders/{NOWHERE}"), None, None).0, 401);
        assert_eq!(w.call("DELETE", &format!("/api/orders/{NOWHERE}"), None, None).0, 401);
    }

    #[test]
    fn ticket_id_validation_messages() {
        let w = World::new();
        let (status, body) = w.call("POST", "/api/orders", Some(ALICE), Some(json!({})));
        assert_eq!(status, 400);
        assert_eq!(body["errors"], json!([{"message": "Invalid value", "field": "ticketId"}, {"message": "TicketId must be provided", "field": "ticketId"}]));
        let (_, body) = w.call("POST", "/api/orders", Some(ALICE), Some(json!({"ticketId": "abc"})));
        assert_eq!(body["errors"], json!([{"message": "TicketId must be provided", "field": "ticketId"}]));
    }

    #[test]
    fn cases_36_to_39_create() {
        let w = World::new();
        assert_eq!(w.call("POST", "/api/orders", Some(ALICE), Some(json!({"ticketId": NOWHERE}))).0, 404);
        let (status, order) = w.order(ALICE, 0);
        assert_eq!(status, 201);
        assert_eq!(order["status"], "created");
        assert_eq!(order["userId"], ALICE);
        assert_eq!(order["expiresAt"], "2026-11-23T10:30:00.000Z");
        assert_eq!(order["ticket"], json!({"id": World::ticket(0), "title": "concert", "price": 20, "version": 0}));
        assert_eq!(order["version"], 0);
        let (status, body) = w.order(BOB, 0);
        assert_eq!((status, body["errors"][0]["message"].as_str()), (400, Some("Ticket is already reserved")));
        assert_eq!(w.store.take_announced_subjects(), vec!["order:created"]);
    }

    /// Case 40 (the reference lists in creation order; paged lists are newest first).
    #[test]
    fn case_40_list_is_per_user_newest_first() {
        let w = World::new();
        w.order(ALICE, 0);
        let first = w.order(BOB, 1).1["id"].clone();
        let second = w.order(BOB, 2).1["id"].clone();
        let (status, list) = w.call("GET", "/api/orders", Some(BOB), None);
        assert_eq!(status, 200);
        let list = list.as_array().unwrap();
        assert_eq!(list.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(), vec![second, first]);
        assert_eq!(list[0]["ticket"]["id"], World::ticket(2));
    }

    #[test]
    fn the_list_is_paged_and_bad_parameters_are_a_400() {
        let w = World::new();
        let first = w.order(BOB, 0).1["id"].clone();
        let second = w.order(BOB, 1).1["id"].clone();
        let page = |path: &str| {
            let request = request("GET", path, Some((&w.keys, BOB, NOW_MS / 1000)), None);
            let ctx = Ctx { store: &w.store, keys: Some(&w.keys), now: Timestamp::from_millis(NOW_MS), window_seconds: 900 };
            handle(&ctx, &request)
        };
        let one = page("/api/orders?limit=1");
        assert_eq!(serde_json::from_slice::<Value>(&one.body).unwrap()[0]["id"], second);
        let cursor = one.header("x-next-cursor").unwrap();
        assert_eq!(one.header("link"), Some(format!("</api/orders?limit=1&cursor={cursor}>; rel=\"next\"").as_str()));
        let two = page(&format!("/api/orders?limit=1&cursor={cursor}"));
        assert_eq!(serde_json::from_slice::<Value>(&two.body).unwrap(), json!([{"id": first, "userId": BOB, "status": "created", "expiresAt": "2026-11-23T10:30:00.000Z", "ticket": {"id": World::ticket(0), "title": "concert", "price": 20, "version": 0}, "version": 0}]));
        assert_eq!(two.header("x-next-cursor"), None);
        for (query, field) in [("limit=500", "limit"), ("limit=", "limit"), ("cursor=0", "cursor"), ("cursor=abc", "cursor")] {
            let (status, body) = w.call("GET", &format!("/api/orders?{query}"), Some(BOB), None);
            assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some(field)), "{query}");
        }
        assert_eq!(w.call("GET", "/api/orders?limit=0", None, None).0, 401, "the session first");
    }

    #[test]
    fn cases_41_42_show_is_for_the_owner() {
        let w = World::new();
        let id = w.order(ALICE, 0).1["id"].as_str().unwrap().to_string();
        let (status, order) = w.call("GET", &format!("/api/orders/{id}"), Some(ALICE), None);
        assert_eq!((status, order["id"].as_str()), (200, Some(id.as_str())));
        assert_eq!(w.call("GET", &format!("/api/orders/{id}"), Some(BOB), None).0, 401);
        assert_eq!(w.call("GET", &format!("/api/orders/{NOWHERE}"), Some(ALICE), None).0, 404);
        assert_eq!(w.call("GET", "/api/orders/nope", Some(ALICE), None).0, 400);
    }

    #[test]
    fn cases_43_44_cancel_releases_the_ticket() {
        let w = World::new();
        let id = w.order(ALICE, 0).1["id"].as_str().unwrap().to_string();
        w.store.take_announced();
        assert_eq!(w.call("DELETE", &format!("/api/orders/{id}"), Some(BOB), None).0, 401);
        assert_eq!(w.call("DELETE", &format!("/api/orders/{id}"), Some(ALICE), None).0, 204);
        assert_eq!(w.call("GET", &format!("/api/orders/{id}"), Some(ALICE), None).1["status"], "cancelled");
        assert_eq!(w.store.take_announced_subjects(), vec!["order:cancelled"]);
        assert_eq!(w.call("DELETE", &format!("/api/orders/{id}"), Some(ALICE), None).0, 204, "again: no change");
        assert!(w.store.take_announced().is_empty());
        assert_eq!(w.order(BOB, 0).0, 201, "the ticket can be ordered again");
        assert_eq!(w.call("DELETE", &format!("/api/orders/{NOWHERE}"), Some(ALICE), None).0, 404);
    }

    #[test]
    fn a_cancel_that_loses_a_race_is_a_409_and_an_outage_a_500() {
        let w = World::new();
        let id = w.order(ALICE, 0).1["id"].as_str().unwrap().to_string();
        ticketing_common::lease::take(&w.store, store::ORDER_VERSIONS, &format!("{id}@1"), Timestamp::now()).unwrap(); // another change is storing version 1
        let (status, res) = w.call("DELETE", &format!("/api/orders/{id}"), Some(ALICE), None);
        assert_eq!((status, res["errors"][0]["message"].as_str()), (409, Some("The order changed meanwhile, please try again")));

        let flaky = FlakyStore::default();
        let replica = TicketReplica { id: World::ticket(1).into(), title: "match".into(), price: Cents(2000), version: 0 };
        store::put_ticket(&flaky, &replica).unwrap();
        let ctx = Ctx { store: &flaky, keys: Some(&w.keys), now: Timestamp::from_millis(NOW_MS), window_seconds: 900 };
        let call = |method: &str, path: &str, body: Option<&Value>| {
            status_and_json(&handle(&ctx, &request(method, path, Some((&w.keys, ALICE, NOW_MS / 1000)), body)))
        };
        let (_, order) = call("POST", "/api/orders", Some(&json!({"ticketId": World::ticket(1)})));
        let id = order["id"].as_str().unwrap().to_string();
        flaky.outage_from_write(1);
        assert_eq!(call("DELETE", &format!("/api/orders/{id}"), None).0, 500, "an outage is not a conflict");
        flaky.heal();
        assert_eq!(store::order(&flaky, &id).unwrap().unwrap().status, OrderStatus::Created, "nothing changed");
        assert_eq!(call("DELETE", &format!("/api/orders/{id}"), None).0, 204, "a retry after the outage cancels");
    }

    #[test]
    fn a_paid_order_cannot_be_cancelled() {
        let w = World::new();
        let id = w.order(ALICE, 0).1["id"].as_str().unwrap().to_string();
        let mut order = store::order(&w.store, &id).unwrap().unwrap();
        order.status = OrderStatus::Complete;
        w.store.set_json(store::ORDERS, &id, &order).unwrap();
        assert_eq!(w.call("DELETE", &format!("/api/orders/{id}"), Some(ALICE), None).0, 400);
    }

    /// An order of ticket `ticket` by `user` with an `Idempotency-Key`.
    fn order_with_key(w: &World, user: &str, key: &str, ticket: usize) -> (u16, Value) {
        let body = json!({"ticketId": World::ticket(ticket)});
        let request = request("POST", "/api/orders", Some((&w.keys, user, NOW_MS / 1000)), Some(&body)).with_header("Idempotency-Key", key);
        let ctx = Ctx { store: &w.store, keys: Some(&w.keys), now: Timestamp::from_millis(NOW_MS), window_seconds: 900 };
        status_and_json(&handle(&ctx, &request))
    }

    #[test]
    fn an_order_whose_answer_was_lost_is_taken_over_as_the_same_order() {
        let keys = SessionKeys::new(KEY, 3600).unwrap();
        let body = json!({"ticketId": World::ticket(0)});
        let order = |store: &FlakyStore, at_ms: u64| {
            let request = request("POST", "/api/orders", Some((&keys, ALICE, at_ms / 1000)), Some(&body)).with_header("Idempotency-Key", "k");
            status_and_json(&handle(&Ctx { store, keys: Some(&keys), now: Timestamp::from_millis(at_ms), window_seconds: 900 }, &request))
        };
        let with_ticket = || {
            let store = FlakyStore::default();
            let replica = TicketReplica { id: World::ticket(0).into(), title: "concert".into(), price: Cents(2000), version: 0 };
            store::put_ticket(&store, &replica).unwrap();
            store
        };
        let probe = with_ticket();
        probe.outage_from_write(u64::MAX); // count from here
        order(&probe, NOW_MS);
        let writes = probe.writes();
        // The answer is lost after the order was stored (`writes`: a single failed write),
        // or the store went away right after the ticket was claimed for the order (writes
        // 8 on fail, the index's first): either way the retry is the same order, never
        // "Ticket is already reserved" for the buyer's own claim.
        assert_eq!(writes, 10, "lease time, claim, record, ticket lease time, ticket claim, its holder, index (2), order, answer");
        for (lost_at, outage) in [(writes, false), (8, true)] {
            let store = with_ticket();
            if outage {
                store.outage_from_write(lost_at);
            } else {
                store.fail_write(lost_at);
            }
            let first = order(&store, NOW_MS);
            store.heal();
            let later = order(&store, NOW_MS + ticketing_common::idempotency::UNFINISHED_AFTER_MS + 1);
            assert_eq!(later.0, 201, "write {lost_at}: {later:?}");
            if first.0 == 201 {
                assert_eq!(later.1["id"], first.1["id"], "write {lost_at}");
            }
            let request = request("GET", "/api/orders", Some((&keys, ALICE, NOW_MS / 1000)), None);
            let (_, mine) = status_and_json(&handle(&Ctx { store: &store, keys: Some(&keys), now: Timestamp::from_millis(NOW_MS), window_seconds: 900 }, &request));
            assert_eq!(mine.as_array().unwrap().len(), 1, "write {lost_at}: one order, listed once");
        }
    }

    #[test]
    fn an_order_retried_with_its_idempotency_key_is_the_same_order() {
        let w = World::new();
        let first = order_with_key(&w, ALICE, "o-1", 0);
        let again = order_with_key(&w, ALICE, "o-1", 0);
        assert_eq!(first.0, 201);
        assert_eq!(again, first, "the same order, not 'Ticket is already reserved'");
        assert_eq!(w.store.take_announced_subjects(), ["order:created"], "announced once");
        let (status, mine) = w.call("GET", "/api/orders", Some(ALICE), None);
        assert_eq!((status, mine.as_array().unwrap().len()), (200, 1));

        let (status, res) = order_with_key(&w, ALICE, "o-1", 1);
        assert_eq!((status, res["errors"][0]["message"].as_str()), (422, Some("This Idempotency-Key was used with another request")));
        let (status, res) = order_with_key(&w, BOB, "o-1", 0);
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Ticket is already reserved")), "Bob's key is his own");
        assert_eq!(w.order(ALICE, 1).0, 201, "without a key as before");
    }
}
