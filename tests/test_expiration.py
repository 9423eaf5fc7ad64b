"""Expiration through the running lattice, with the order window shortened to 3 seconds
by a manifest version (the window is deployment config): unpaid orders are cancelled
when they expire and their tickets sell again; paid orders stay complete. The lateness
of 100 expiries (cancelled status seen minus `expiresAt`) is measured and reported."""
from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime, timezone

import pytest

from helpers import order_status, create_ticket, eventually, nats, new_id, order_when_replicated, ticket, user
from manifests import deployed, set_config

WINDOW_SECONDS = 3


def expires_at(order: dict) -> float:
    return datetime.strptime(order["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def short_window(running_lattice):
    edit = lambda doc: set_config(doc, "orders", "orders-settings", expiration_window_seconds=str(WINDOW_SECONDS))  # noqa: E731
    with deployed(running_lattice, "short-window", edit):
        seller, buyer = user(running_lattice), user(running_lattice)
        # The component reads its config per request: wait until orders use the new window.
        def short():
            order = order_when_replicated(buyer, create_ticket(seller)["id"]).json()
            return expires_at(order) - time.time() < WINDOW_SECONDS + 2
        eventually(short, timeout=60, interval=1, what="orders to use the short window")
        yield running_lattice



def test_an_unpaid_order_expires_and_its_ticket_sells_again(short_window):
    seller, buyer, next_buyer = user(short_window), user(short_window), user(short_window)
    created = create_ticket(seller)
    order = order_when_replicated(buyer, created["id"]).json()
    assert expires_at(order) - time.time() <= WINDOW_SECONDS + 1
    eventually(lambda: ticket(seller, created["id"]).get("orderId") == order["id"], what="the reservation")
    assert order_status(buyer, order["id"]) == "created"
    eventually(lambda: order_status(buyer, order["id"]) == "cancelled", timeout=WINDOW_SECONDS + 20, what="the expiry")
    eventually(lambda: "orderId" not in ticket(seller, created["id"]), what="the ticket to be released")
    again = eventually(lambda: (r := next_buyer.post("/api/orders", {"ticketId": created["id"]})).status == 201 and r,
                       what="the ticket to sell again")
    assert again.json()["status"] == "created"


def test_a_paid_order_never_expires(short_window):
    seller, buyer = user(short_window), user(short_window)
    created = create_ticket(seller)
    order = order_when_replicated(buyer, created["id"]).json()
    bus = nats(short_window)
    try:
        bus.publish_event("payment:created", {"id": new_id(), "orderId": order["id"], "stripeId": "ch_test"})
    finally:
        bus.close()
    eventually(lambda: order_status(buyer, order["id"]) == "complete", what="the payment")
    time.sleep(max(0.0, expires_at(order) - time.time()) + 2)  # past the expiry, and then some
    assert order_status(buyer, order["id"]) == "complete"
    assert ticket(seller, created["id"]).get("orderId") == order["id"], "sold: still reserved"


def test_100_unpaid_orders_expire_and_their_lateness_is_reported(short_window):
    seller, buyer = user(short_window), user(short_window)
    tickets = [create_ticket(seller, f"expiry {i}") for i in range(100)]
    order_when_replicated(buyer, create_ticket(seller, "sentinel")["id"])  # all 100 replicated
    orders: list[dict] = []
    lock = threading.Lock()

    def place_orders():  # one every 50 ms, so expiries are spread over 5 seconds
        for t in tickets:
            reply = buyer.post("/api/orders", {"ticketId": t["id"]})
            assert reply.status == 201, reply.body
            with lock:
                orders.append(reply.json())
            time.sleep(0.05)

    placer = threading.Thread(target=place_orders)
    placer.start()
    lateness: dict[str, float] = {}
    deadline = time.time() + 60
    while (len(lateness) < 100) and time.time() < deadline:
        with lock:
            due = [o for o in orders if o["id"] not in lateness and expires_at(o) <= time.time()]
        for o in due:
            if order_status(buyer, o["id"]) == "cancelled":
                lateness[o["id"]] = time.time() - expires_at(o)
        time.sleep(0.01)
    placer.join()
    assert len(lateness) == 100, f"only {len(lateness)} of 100 orders expired"

    values = sorted(lateness.values())
    pct = lambda p: values[min(len(values) - 1, int(p / 100 * len(values)))]  # noqa: E731
    table = ("expiry lateness over 100 orders (status seen cancelled - expiresAt, seconds)\n"
             "| min | p50 | p90 | p99 | max | mean |\n|---|---|---|---|---|---|\n"
             f"| {values[0]:.3f} | {pct(50):.3f} | {pct(90):.3f} | {pct(99):.3f} | {values[-1]:.3f} "
             f"| {statistics.mean(values):.3f} |\n")
    (short_window.state_dir / "expiry-lateness.md").write_text(table)
    print("\n" + table)
    assert values[0] >= -0.05, "nothing expires before its time"
