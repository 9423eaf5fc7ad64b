//! HTTP routes of the payments service (`/api/payments`), reference §2.4.

use serde_json::json;
use ticketing_common::api::PaymentView;
use ticketing_common::http::{respond, HandlerResult, Request, Response};
use ticketing_common::idempotency;
use ticketing_common::ids::OrderId;
use ticketing_common::session::{configured, SessionKeys};
use ticketing_common::store::KeyValue;
use ticketing_common::time::Timestamp;
use ticketing_common::validate::{Body, Validation};
use ticketing_common::ApiError;

use crate::card::CardGateway;
use crate::orders::OrderLookup;
use crate::payment::{self, Payer};
use crate::store;

pub struct Ctx<'a, S: KeyValue, G: CardGateway> {
    pub store: &'a S,
    pub keys: Option<&'a SessionKeys>,
    pub now: Timestamp,
    pub gateway: &'a G,
    /// Orders itself, asked for an order's status just before its card is charged.
    pub orders: &'a dyn OrderLookup,
}

impl<'a, S: KeyValue, G: CardGateway> Ctx<'a, S, G> {
    fn payer(&self) -> Payer<'a, S, G> {
        Payer { store: self.store, card: self.gateway, orders: self.orders, now: self.now }
    }
}

pub fn handle<S: KeyValue, G: CardGateway>(ctx: &Ctx<S, G>, request: &Request) -> Response {
    respond(route(ctx, request))
}

fn route<S: KeyValue, G: CardGateway>(ctx: &Ctx<S, G>, request: &Request) -> HandlerResult {
    match (request.method.as_str(), request.segments().as_slice()) {
        ("POST", ["api", "payments"]) => {
            let user_id = configured(ctx.keys)?.require_user(request, ctx.now)?.id;
            idempotency::once(ctx.store, configured(ctx.keys)?, ctx.now, &user_id, request, |_| create(ctx, request, &user_id))
        }
        ("GET", ["api", "payments", "orders", order_id]) => show(ctx, request, order_id),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/payments/orders/:orderId` → what payments knows of the caller's order: its
/// status here and its latest charge (so a client can tell paid, failed and refunded).
fn show<S: KeyValue, G: CardGateway>(ctx: &Ctx<S, G>, request: &Request, order_id: &str) -> HandlerResult {
    let user_id = configured(ctx.keys)?.require_user(request, ctx.now)?.id;
    let order = store::order(ctx.store, &OrderId::parse(order_id)?)?.ok_or_else(ApiError::not_found)?;
    if order.user_id != user_id {
        return Err(ApiError::not_authorized());
    }
    let charge = store::charge_of(ctx.store, &order.id)?.map(|c| {
        json!({ "id": c.id, "status": c.status, "amount": c.amount, "refunded": c.stripe_refund_id.is_some(), "failure": c.failure })
    });
    Ok(Response::json(200, &json!({ "orderId": order.id, "orderStatus": order.status, "payment": charge })))
}

/// `POST /api/payments {orderId, token}` by `user_id` → 201 `{id}` once the card is
/// charged the order's price; publishes `payment:created`.
fn create<S: KeyValue, G: CardGateway>(ctx: &Ctx<S, G>, request: &Request, user_id: &str) -> HandlerResult {
    let body = Body::parse(request)?;
    let token = body.trimmed("token");
    let order_id = body.trimmed("orderId");
    let mut v = Validation::new();
    v.check(!token.is_empty(), "token", "Invalid value");
    v.check(!order_id.is_empty(), "orderId", "Invalid value");
    v.finish()?;

    let charge_id = payment::pay(&ctx.payer(), user_id, &OrderId::parse(&order_id)?, &token)?;
    Ok(Response::json(201, &PaymentView { id: charge_id }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::PayError;
    use crate::payment::{IN_PROGRESS, UNKNOWN_AFTER_MS};
    use crate::store::ChargeStatus;
    use ticketing_common::events::{OrderStatus, PaymentCreated, PaymentFailed};
    use crate::store::OrderReplica;
    use crate::testing::{Fake, ORDER};
    use serde_json::Value;
    use std::rc::Rc;
    use ticketing_common::money::Cents;
    use ticketing_common::store::MemoryStore;
    use ticketing_common::testing::{request, status_and_json, TEST_KEY as KEY, ALICE, BOB};

    const NOW: u64 = 1_795_428_900_000;

    struct World {
        store: Rc<MemoryStore>,
        keys: SessionKeys,
        gateway: Fake,
    }

    impl World {
        fn new(status: OrderStatus) -> Self {
            let w = Self { store: Rc::new(MemoryStore::default()), keys: SessionKeys::new(KEY, 3600).unwrap(), gateway: Fake::default() };
            let order = OrderReplica { id: ORDER.into(), version: 0, user_id: ALICE.into(), price: Cents(2050), status };
            store::put_order(&*w.store, &order).unwrap();
            w
        }

        fn pay_at(&self, user: Option<&str>, body: Value, now: u64) -> (u16, Value) {
            let ctx = Ctx { store: &*self.store, keys: Some(&self.keys), now: Timestamp::from_millis(now), gateway: &self.gateway, orders: &self.gateway };
            let session = user.map(|id| (&self.keys, id, now / 1000));
            status_and_json(&handle(&ctx, &request("POST", "/api/payments", session, Some(&body))))
        }

        fn pay(&self, user: Option<&str>, body: Value) -> (u16, Value) {
            self.pay_at(user, body, NOW)
        }
    }

    fn body(token: &str) -> Value {
        serde_json::json!({ "orderId": ORDER, "token": token })
    }

    #[test]
    fn anonymous_and_bad_bodies_are_refused_without_charging() {
        let w = World::new(OrderStatus::Created);
        assert_eq!(w.pay(None, body("tok_visa")).0, 401);
        let (status, res) = w.pay(Some(ALICE), serde_json::json!({}));
        assert_eq!(status, 400);
        assert_eq!(res["errors"], serde_json::json!([{"message": "Invalid value", "field": "token"}, {"message": "Invalid value", "field": "orderId"}]));
        assert_eq!(w.pay(Some(ALICE), serde_json::json!({"orderId": "nope", "token": "t"})).0, 400);
        assert!(w.gateway.charges().is_empty());
    }

    #[test]
    fn case_53_unknown_order_is_404() {
        let w = World::new(OrderStatus::Created);
        assert_eq!(w.pay(Some(ALICE), serde_json::json!({"orderId": "5ec00000ffffffffffffffff", "token": "asldkfj"})).0, 404);
    }

    #[test]
    fn case_54_someone_elses_order_is_401() {
        let w = World::new(OrderStatus::Created);
        assert_eq!(w.pay(Some(BOB), body("tok_visa")).0, 401);
        assert!(w.gateway.charges().is_empty());
    }

    #[test]
    fn case_55_a_cancelled_order_cannot_be_paid() {
        let w = World::new(OrderStatus::Cancelled);
        let (status, res) = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Cannot pay for a cancelled order")));
    }

    #[test]
    fn an_order_cancelled_at_orders_but_not_yet_here_is_never_charged() {
        let w = World::new(OrderStatus::Created);
        w.gateway.orders_answer(Ok(Some(OrderStatus::Cancelled)));
        let (status, res) = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Cannot pay for a cancelled order")));
        assert!(w.gateway.charges().is_empty());
        assert!(store::charge_of(&*w.store, ORDER).unwrap().is_none(), "no attempt recorded");
        w.gateway.orders_answer(Ok(Some(OrderStatus::Created)));
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 201, "nothing was left locked");
    }

    #[test]
    fn no_charge_while_orders_cannot_confirm_the_order() {
        let w = World::new(OrderStatus::Created);
        w.gateway.orders_answer(Err("orders is not running".into()));
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 503);
        w.gateway.orders_answer(Ok(None));
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 404);
        assert!(w.gateway.charges().is_empty());
        w.gateway.orders_answer(Ok(Some(OrderStatus::Created)));
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 201);
    }

    #[test]
    fn case_56_charges_the_price_in_cents_and_announces_it() {
        let w = World::new(OrderStatus::Created);
        let (status, res) = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!(status, 201);
        let id = res["id"].as_str().unwrap().to_string();
        let charges = w.gateway.charges();
        assert_eq!(charges, vec![(2050, "tok_visa".to_string(), format!("charge-{id}"))]);
        let charge = store::charge_of(&*w.store, ORDER).unwrap().unwrap();
        assert_eq!((charge.status, charge.amount, charge.stripe_id.as_deref()), (ChargeStatus::Completed, Cents(2050), Some("ch_1")));
        let published = w.store.take_announced();
        let event = published[0].decode::<PaymentCreated>().unwrap();
        assert_eq!(event, PaymentCreated { id, order_id: ORDER.into(), stripe_id: "ch_1".into() });
    }

    #[test]
    fn the_owner_can_see_the_payment_state_of_an_order() {
        let w = World::new(OrderStatus::Created);
        let ctx = Ctx { store: &*w.store, keys: Some(&w.keys), now: Timestamp::from_millis(NOW), gateway: &w.gateway, orders: &w.gateway };
        let path = format!("/api/payments/orders/{ORDER}");
        let show = |user: &str| status_and_json(&handle(&ctx, &request("GET", &path, Some((&w.keys, user, NOW / 1000)), None)));
        assert_eq!(show(ALICE), (200, serde_json::json!({"orderId": ORDER, "orderStatus": "created", "payment": null})));
        assert_eq!(show(BOB).0, 401);
        w.pay(Some(ALICE), body("tok_visa"));
        let (_, res) = show(ALICE);
        assert_eq!((res["payment"]["status"].as_str(), res["payment"]["amount"].as_f64(), res["payment"]["refunded"].as_bool()),
                   (Some("completed"), Some(20.5), Some(false)));
    }

    #[test]
    fn paying_twice_charges_once() {
        let w = World::new(OrderStatus::Created);
        let first = w.pay(Some(ALICE), body("tok_visa"));
        let second = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!((first.0, second.0), (201, 201));
        assert_eq!(first.1["id"], second.1["id"]);
        assert_eq!(w.gateway.charges().len(), 1);
    }

    #[test]
    fn a_declined_card_fails_the_charge_and_ends_the_order() {
        let w = World::new(OrderStatus::Created);
        w.gateway.answer(Err(PayError::Declined("Your card was declined.".into())));
        let (status, res) = w.pay(Some(ALICE), body("tok_chargeDeclined"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("Your card was declined.")));
        let charge = store::charge_of(&*w.store, ORDER).unwrap().unwrap();
        assert_eq!(charge.status, ChargeStatus::Failed);
        let published = w.store.take_announced();
        assert_eq!(published[0].decode::<PaymentFailed>().unwrap().order_id, ORDER);
        // Asking again answers the same, without charging again.
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 400);
        assert_eq!(w.gateway.charges().len(), 1);
    }

    #[test]
    fn a_bad_token_can_be_corrected() {
        let w = World::new(OrderStatus::Created);
        w.gateway.answer(Err(PayError::Invalid("No such token: 'tok_nope'".into())));
        let (status, res) = w.pay(Some(ALICE), body("tok_nope"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("No such token: 'tok_nope'")));
        assert!(w.store.take_announced().is_empty(), "the order is not ended");
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 201);
        assert_eq!(w.gateway.charges().len(), 2);
    }

    #[test]
    fn an_unknown_outcome_is_retried_with_the_same_key_only_after_a_while() {
        let w = World::new(OrderStatus::Created);
        w.gateway.answer(Err(PayError::Unavailable("Stripe is down".into())));
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 503);
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 409, "maybe still in flight");
        let (status, _) = w.pay_at(Some(ALICE), body("tok_visa"), NOW + UNKNOWN_AFTER_MS);
        assert_eq!(status, 201);
        let keys: Vec<String> = w.gateway.charges().into_iter().map(|(_, _, key)| key).collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1], "the same idempotency key: Stripe charges once");
    }

    #[test]
    fn a_payment_that_completes_after_the_order_was_cancelled_is_refunded() {
        let w = World::new(OrderStatus::Created);
        // The order expires while Stripe is charging.
        w.gateway.on_charge(Box::new({
            let store = Rc::clone(&w.store);
            move || {
                let mut order = store::order(&*store, ORDER).unwrap().unwrap();
                order.status = OrderStatus::Cancelled;
                store::put_order(&*store, &order).unwrap();
            }
        }));
        let (status, res) = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (400, Some("The order expired while paying; the charge was refunded")));
        let charge = store::charge_of(&*w.store, ORDER).unwrap().unwrap();
        assert_eq!((charge.status, charge.stripe_refund_id.as_deref()), (ChargeStatus::Completed, Some("re_1")));
        assert_eq!(w.gateway.refunds(), vec![("ch_1".to_string(), format!("refund-{}", charge.id))]);
    }

    /// Alice pays on `store` at `now`, with an `Idempotency-Key` if given.
    fn pay_on(w: &World, store: &impl KeyValue, now: u64, key: Option<&str>, token: &str) -> (u16, Value) {
        let ctx = Ctx { store, keys: Some(&w.keys), now: Timestamp::from_millis(now), gateway: &w.gateway, orders: &w.gateway };
        let mut request = request("POST", "/api/payments", Some((&w.keys, ALICE, now / 1000)), Some(&body(token)));
        if let Some(key) = key {
            request = request.with_header("Idempotency-Key", key);
        }
        status_and_json(&handle(&ctx, &request))
    }

    fn stripe_keys(w: &World) -> std::collections::BTreeSet<String> {
        w.gateway.charges().into_iter().map(|(_, _, key)| key).collect()
    }

    #[test]
    fn an_attempt_claimed_without_a_charge_is_taken_over_after_a_while_with_the_same_stripe_key() {
        let w = World::new(OrderStatus::Created);
        // A request claimed the attempt and then failed to record its charge.
        ticketing_common::lease::take(&*w.store, store::CHARGE_CLAIMS, &format!("{ORDER}#0"), Timestamp::from_millis(NOW)).unwrap();
        let (status, res) = w.pay(Some(ALICE), body("tok_visa"));
        assert_eq!((status, res["errors"][0]["message"].as_str()), (409, Some(IN_PROGRESS)));
        assert!(w.gateway.charges().is_empty());
        let (status, res) = w.pay_at(Some(ALICE), body("tok_visa"), NOW + UNKNOWN_AFTER_MS);
        assert_eq!(status, 201, "{res}");
        assert_eq!(res["id"].as_str(), Some(store::charge_id(ORDER, 0).as_str()), "the id the first holder would have used");
        assert_eq!(stripe_keys(&w), [format!("charge-{}", store::charge_id(ORDER, 0))].into(), "so Stripe charges once even if it was only slow");
        assert_eq!(w.pay_at(Some(ALICE), body("tok_visa"), NOW + UNKNOWN_AFTER_MS).0, 201, "and later tries see it paid");
        assert_eq!(w.gateway.charges().len(), 1);
    }

    #[test]
    fn a_claim_from_before_leases_without_a_charge_no_longer_locks_the_order() {
        let w = World::new(OrderStatus::Created);
        w.store.increment(store::CHARGE_CLAIMS, &format!("{ORDER}#0"), 1).unwrap();
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 201);
    }

    #[test]
    fn a_failed_charge_of_an_earlier_attempt_does_not_answer_for_the_current_one() {
        let w = World::new(OrderStatus::Created);
        w.gateway.answer(Err(PayError::Invalid("No such token".into())));
        assert_eq!(w.pay(Some(ALICE), body("tok_nope")).0, 400);
        // Attempt 1 is claimed, then the store fails before its charge is recorded.
        ticketing_common::lease::take(&*w.store, store::CHARGE_CLAIMS, &format!("{ORDER}#1"), Timestamp::from_millis(NOW)).unwrap();
        assert_eq!(w.pay(Some(ALICE), body("tok_visa")).0, 409, "not attempt 0's 'No such token'");
        assert_eq!(w.pay_at(Some(ALICE), body("tok_visa"), NOW + UNKNOWN_AFTER_MS).0, 201);
    }

    /// A store outage from any write of a payment on: once the store is back, retrying
    /// (at once, or after [`UNKNOWN_AFTER_MS`] when the attempt could not be given back)
    /// pays the order, every call to Stripe carries the same idempotency key, and the order
    /// is never left locked.
    #[test]
    fn a_payment_cut_short_at_any_write_completes_when_retried_and_charges_once() {
        use ticketing_common::testing::FlakyStore;
        let order = OrderReplica { id: ORDER.into(), version: 0, user_id: ALICE.into(), price: Cents(2050), status: OrderStatus::Created };
        let probe = FlakyStore::default();
        store::put_order(&probe.inner, &order).unwrap();
        let w = World::new(OrderStatus::Created);
        assert_eq!(pay_on(&w, &probe, NOW, None, "tok_visa").0, 201);
        let writes = probe.writes();
        assert!(writes >= 5, "{writes}");
        for n in 1..=writes {
            let w = World::new(OrderStatus::Created);
            let flaky = FlakyStore::default();
            store::put_order(&flaky.inner, &order).unwrap();
            flaky.outage_from_write(n);
            let first = pay_on(&w, &flaky, NOW, None, "tok_visa");
            flaky.heal();
            let mut retry = pay_on(&w, &flaky, NOW + 1, None, "tok_visa");
            if retry.0 == 409 {
                retry = pay_on(&w, &flaky, NOW + 1 + UNKNOWN_AFTER_MS, None, "tok_visa");
            }
            assert_eq!(retry.0, 201, "write {n}: first {first:?}, retry {retry:?}");
            let charge = store::charge_of(&flaky.inner, ORDER).unwrap().unwrap();
            assert_eq!((charge.status, charge.id.as_str()), (ChargeStatus::Completed, retry.1["id"].as_str().unwrap()), "write {n}");
            assert_eq!(stripe_keys(&w).len(), 1, "write {n}: {:?}", w.gateway.charges());
        }
    }

    #[test]
    fn a_payment_retried_with_its_idempotency_key_gets_the_first_answer() {
        let w = World::new(OrderStatus::Created);
        w.gateway.answer(Err(PayError::Declined("Your card was declined.".into())));
        let first = pay_on(&w, &*w.store, NOW, Some("p-1"), "tok_chargeDeclined");
        assert_eq!(first.0, 400);
        assert_eq!(pay_on(&w, &*w.store, NOW + 5, Some("p-1"), "tok_chargeDeclined"), first);
        let (status, res) = pay_on(&w, &*w.store, NOW + 5, Some("p-1"), "tok_visa");
        assert_eq!((status, res["errors"][0]["message"].as_str()), (422, Some("This Idempotency-Key was used with another request")));
        assert_eq!(w.gateway.charges().len(), 1);
        assert_eq!(w.store.take_announced_subjects(), ["payment:failed"], "announced once");
    }
}
