"""Traces (README, "Traces"): with OpenTelemetry on (the `traced` profile: one host and a
trace backend), one purchase is one trace across the host's HTTP server, the components, the
keyvalue, Stripe and messaging providers, and the event handlers the payment sets off.

The lattice is the test's own, beside the session's test lattice."""
from __future__ import annotations

import pytest

from client import Client
from helpers import eventually, lattice_up, new_id, unique_email
from lattice import sessions, traces
from lattice.settings import profile


@pytest.fixture(scope="module")
def traced_lattice():
    traces.ensure_backend()
    with lattice_up(profile("traced")) as running:
        yield running


def test_one_purchase_is_one_trace_across_components_providers_and_event_handlers(traced_lattice):
    prof = traced_lattice
    seller = Client(prof.http_url, session=sessions.mint(prof, new_id(), unique_email()))
    buyer = Client(prof.http_url, session=sessions.mint(prof, new_id(), unique_email()))
    ticket = seller.post("/api/tickets", {"title": "traced", "price": 12})
    assert ticket.status == 201, ticket.body
    order = eventually(lambda: (r := buyer.post("/api/orders", {"ticketId": ticket.json()["id"]})).status == 201 and r,
                       what="orders to know the ticket").json()
    paid = eventually(lambda: (r := buyer.post("/api/payments", {"orderId": order["id"], "token": "tok_visa"})).status != 404 and r,
                      what="payments to know the order")
    assert paid.status == 201, paid.body
    eventually(lambda: buyer.get(f"/api/orders/{order['id']}").json()["status"] == "complete", what="the order to complete")

    # Span names tell who made them: `handle` and `component_invocation` the host (its HTTP
    # server, a component called), `keyvalue ...` and `stripe ...` the providers serving
    # a component's call, `deliver <subject>` the messaging provider handing an event on.
    wanted = {"handle", "component_invocation", "keyvalue get", "keyvalue set", "stripe create-charge",
              "deliver payment:created"}

    def complete(spans: list[dict]) -> bool:
        """Every span named, and every parent it names there (spans arrive in batches)."""
        ids = {s["context"]["span_id"] for s in spans}
        dangling = [s for s in spans if s.get("parent_id") and s["parent_id"] not in ids]
        return wanted <= {s["name"] for s in spans} and not dangling

    def payment_trace():
        # The lattice keeps making spans (polls, heartbeats): ask for the charge's trace.
        charges = traces.spans(prof, name="stripe create-charge")
        for trace_id in {s["context"]["trace_id"] for s in charges}:
            spans = traces.spans(prof, trace_id=trace_id)
            if complete(spans):
                return spans
        return None

    spans = eventually(payment_trace, timeout=60, interval=1,
                       what="the payment's trace with the host, the providers and the payment:created handler")
    # One root, the HTTP request; everything else hangs under it.
    ids = {s["context"]["span_id"] for s in spans}
    roots = [s["name"] for s in spans if s.get("parent_id") not in ids]
    assert roots == ["handle"], roots
