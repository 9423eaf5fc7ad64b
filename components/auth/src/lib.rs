//! auth component: the wasi:http adapter around [`routes`].

pub mod routes;

#[cfg(target_arch = "wasm32")]
mod component {
    ticketing_guest::component_bindings!("auth");

    use bindings::exports::wasi::http::incoming_handler::Guest;
    use ticketing_guest::wasi::http::types::{IncomingRequest, ResponseOutparam};

    struct Auth;

    impl Guest for Auth {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            ticketing_guest::http::serve(request, out, super::routes::handle);
        }
    }

    bindings::export!(Auth with_types_in bindings);
}
