//! orders service: reservations of tickets.
//!
//! - the order and its rules (placing, cancelling, expiring, completing; the ticket
//!   replica in version order): [`order`]
//! - HTTP routes: [`routes`]
//! - storage and the no-double-sale rule: [`store`]
//! - event handlers (ticket replica, expiry, payment): [`listeners`]
//! - other services ask an order's current status through the `ticketing:orders/status`
//!   export (the wasm adapter below)

pub mod listeners;
pub mod order;
pub mod routes;
pub mod store;

/// The wasm adapter: HTTP requests and events in, status queries answered.
#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("orders");

    use bindings::exports::wasi::http::incoming_handler::Guest as HttpHandler;
    use bindings::exports::ticketing::orders::status::Guest as StatusQuery;
    use bindings::exports::wasmcloud::messaging::handler::Guest as EventHandler;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use ticketing_guest::wasmcloud::messaging::types::BrokerMessage;
    use ticketing_guest::{config, http, kv::LatticeStore, session_keys};

    use super::{listeners, routes, store};

    struct Orders;

    /// Config `expiration_window_seconds` (15 minutes when absent or not a number).
    fn window_seconds() -> u64 {
        config("expiration_window_seconds").and_then(|v| v.trim().parse().ok()).filter(|&s| s > 0).unwrap_or(super::order::DEFAULT_WINDOW_SECONDS)
    }

    impl HttpHandler for Orders {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let keys = session_keys();
            http::serve(request, out, |request| {
                let ctx = routes::Ctx {
                    store: &LatticeStore,
                    keys: keys.as_ref(),
                    now: ticketing_common::time::Timestamp::now(),
                    window_seconds: window_seconds(),
                };
                routes::handle(&ctx, &request)
            });
        }
    }

    impl EventHandler for Orders {
        fn handle_message(message: BrokerMessage) -> Result<(), String> {
            listeners::dispatch(&LatticeStore, &message.subject, &message.body).map_err(|e| e.to_wire())
        }
    }

    impl StatusQuery for Orders {
        fn current(order_id: String) -> Result<Option<String>, String> {
            let order = store::order(&LatticeStore, &order_id).map_err(|e| format!("{e:?}"))?;
            Ok(order.map(|o| o.status.as_str().to_string()))
        }
    }

    bindings::export!(Orders with_types_in bindings);
}
