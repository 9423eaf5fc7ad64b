"""Traces (README, "Traces"): with OpenTelemetry on (the `traced` profile: one host and a
Jaeger), one purchase is one trace across the host's HTTP server, the components, the
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
    traces.ensure_jaeger()
    with lattice_up(profile("traced")) as running:
        yield running


def services_of(trace: dict) -> set[str]:
    return {process["serviceName"] for process in trace["processes"].values()}


def operations_of(trace: dict) -> set[str]:
    return {span["operationName"] for span in trace["spans"]}


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

    def payment_trace():
        found = traces.query(prof, "/api/traces", service="payments-stripe", operation="stripe create-charge", limit=50)
        complete = [t for t in found.get("data") or []
                    if {"wasmcloud-host", "keyvalue-mongo", "payments-stripe", "messaging-jetstream"} <= services_of(t)
                    and "deliver payment:created" in operations_of(t)]
        return complete[0] if complete else None

    trace = eventually(payment_trace, timeout=60, interval=1,
                       what="the payment's trace with the host, the providers and the payment:created handler")
    operations = operations_of(trace)
    assert {"stripe create-charge", "keyvalue set", "keyvalue get"} <= operations, sorted(operations)
    # One root: the HTTP request; everything else hangs under it.
    roots = [s for s in trace["spans"] if not s["references"]]
    assert len(roots) == 1, [(s["operationName"], trace["processes"][s["processID"]]["serviceName"]) for s in roots]
    assert trace["processes"][roots[0]["processID"]]["serviceName"] == "wasmcloud-host"
