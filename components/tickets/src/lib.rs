//! tickets service: tickets for sale (`/api/tickets*`) and the ticket side of
//! reservations (events `order:created` / `order:cancelled`).
//!
//! - the ticket and its rules (listing, editing, reserving, releasing): [`ticket`]
//! - HTTP routes: [`routes`]
//! - event handlers: [`listeners`]
//! - storage (bucket `tickets`, version claims in `ticket_versions`): [`store`]
//! - the index of tickets for sale, newest first (bucket `tickets_for_sale`): [`for_sale`]

pub mod for_sale;
pub mod listeners;
pub mod routes;
pub mod store;
pub mod ticket;

/// The wasm adapter: HTTP requests and events in.
#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("tickets");

    use bindings::exports::wasi::http::incoming_handler::Guest as HttpHandler;
    use bindings::exports::wasmcloud::messaging::handler::Guest as EventHandler;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};
    use ticketing_guest::wasmcloud::messaging::types::BrokerMessage;
    use ticketing_guest::{http, kv::LatticeStore, session_keys};

    use super::{listeners, routes};

    struct Tickets;

    impl HttpHandler for Tickets {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let keys = session_keys();
            http::serve(request, out, |request| {
                let ctx = routes::Ctx { store: &LatticeStore, keys: keys.as_ref(), now: ticketing_common::time::Timestamp::now() };
                routes::handle(&ctx, &request)
            });
        }
    }

    impl EventHandler for Tickets {
        fn handle_message(message: BrokerMessage) -> Result<(), String> {
            listeners::dispatch(&LatticeStore, &message.subject, &message.body).map_err(|e| e.to_wire())
        }
    }

    bindings::export!(Tickets with_types_in bindings);
}
