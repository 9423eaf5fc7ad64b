//! Continuing a component's trace inside a provider.

use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use wasmcloud_provider_sdk::wasmcloud_tracing::context::get_span_context;
use wasmcloud_provider_sdk::Context;

/// The W3C trace-context header: events carry it from the write that announced them (the
/// keyvalue provider's outbox relay sets it) to their handlers (the messaging provider
/// continues it), so a request and everything it sets off are one trace.
pub const TRACEPARENT: &str = "traceparent";

/// The span of one call from a component, named `operation` and made a child of the
/// caller's span (the W3C trace context the host sends with every wRPC call), so that one
/// request shows as one trace across the HTTP server, the component and the providers it
/// calls. Nearly free while tracing is off.
pub fn call_span(cx: &Option<Context>, operation: &'static str) -> Span {
    let caller = cx.as_ref().and_then(|cx| cx.component.clone()).unwrap_or_default();
    let span = tracing::info_span!("call", otel.name = operation, otel.kind = "server", component = %caller);
    if let Some(cx) = cx {
        continue_trace(&span, cx.tracing.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    span
}

/// Makes `span` a child of the trace whose context `headers` carry (`traceparent`, ...).
/// Only before the span is first entered: OpenTelemetry starts it then, parent fixed.
pub fn continue_trace(span: &Span, headers: impl IntoIterator<Item = (String, String)>) {
    let carrier: Vec<(String, String)> = headers.into_iter().collect();
    if carrier.iter().any(|(k, _)| k.eq_ignore_ascii_case(TRACEPARENT)) {
        let _ = span.set_parent(get_span_context(&carrier));
    }
}
