//! payments service: card payments for orders (`/api/payments`).
//!
//! - paying an order and refunding a late charge, the rules: [`payment`]
//! - HTTP routes: [`routes`]
//! - event handlers (order replica, refunds): [`listeners`]
//! - storage (order replica, charges, one charge per order): [`store`]
//! - the card port (Stripe through the payments-stripe provider): [`card`]
//! - an order's status asked of orders itself, before charging: [`orders`]

pub mod card;
pub mod listeners;
pub mod orders;
pub mod payment;
pub mod routes;
pub mod store;

#[cfg(test)]
mod testing;

/// The wasm adapter: HTTP requests and events in.
#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("payments");

    use bindings::exports::wasi::http::incoming_handler::Guest as HttpHandler;
    use bindings::exports::wasmcloud::messaging::handler::Guest as EventHandler;
    use bindings::ticketing::orders::status;
    use bindings::ticketing::stripe::charges;
    use bindings::ticketing::stripe::types::{ChargeRequest, Error};
    use ticketing_common::events::OrderStatus;
    use ticketing_common::money::Cents;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use ticketing_guest::wasmcloud::messaging::types::BrokerMessage;
    use ticketing_guest::{http, kv::LatticeStore, session_keys};

    use super::card::{CardGateway, PayError};
    use super::orders::OrderLookup;
    use super::{listeners, routes};

    /// Stripe through the payments-stripe provider.
    struct Stripe;

    fn to_pay_error(e: Error) -> PayError {
        match e {
            Error::CardDeclined(m) => PayError::Declined(m),
            Error::InvalidRequest(m) => PayError::Invalid(m),
            Error::Unavailable(m) => PayError::Unavailable(m),
        }
    }

    impl CardGateway for Stripe {
        fn charge(&self, amount: Cents, source: &str, idempotency_key: &str, order_id: &str) -> Result<String, PayError> {
            let request = ChargeRequest {
                amount: amount.0,
                currency: "usd".into(),
                source: source.into(),
                idempotency_key: idempotency_key.into(),
                description: Some(format!("Ticketing order {order_id}")),
                metadata: vec![("orderId".into(), order_id.into())],
            };
            charges::create_charge(&request).map(|c| c.id).map_err(to_pay_error)
        }

        fn refund(&self, stripe_charge_id: &str, idempotency_key: &str) -> Result<String, PayError> {
            charges::refund_charge(stripe_charge_id, idempotency_key).map(|r| r.id).map_err(to_pay_error)
        }
    }

    /// The orders component, through its `ticketing:orders/status` export.
    struct Orders;

    impl OrderLookup for Orders {
        fn current_status(&self, order_id: &str) -> Result<Option<OrderStatus>, String> {
            match status::current(order_id)? {
                None => Ok(None),
                Some(text) => OrderStatus::parse(&text).map(Some).ok_or_else(|| format!("orders answered `{text}`")),
            }
        }
    }

    struct Payments;

    impl HttpHandler for Payments {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let keys = session_keys();
            http::serve(request, out, |request| {
                let ctx = routes::Ctx {
                    store: &LatticeStore,
                    keys: keys.as_ref(),
                    now: ticketing_common::time::Timestamp::now(),
                    gateway: &Stripe,
                    orders: &Orders,
                };
                routes::handle(&ctx, &request)
            });
        }
    }

    impl EventHandler for Payments {
        fn handle_message(message: BrokerMessage) -> Result<(), String> {
            listeners::dispatch(&LatticeStore, &Stripe, &message.subject, &message.body).map_err(|e| e.to_wire())
        }
    }

    bindings::export!(Payments with_types_in bindings);
}
