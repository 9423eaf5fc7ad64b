"""Event delivery through the running lattice: nothing is lost while a consumer is away.

The orders component is taken out of the application (a new manifest version without
it, as a deployer would do), tickets are sold meanwhile, and the full manifest is
deployed again: every `ticket:created` waited in the stream and reaches orders once.
"""
from __future__ import annotations

import json

from helpers import create_ticket, eventually, nats, order_when_replicated, user
from lattice.events import DEAD_LETTERS, EVENTS, consumer_name
from lattice.washcli import wash_json
from manifests import deployed, without_component

ORDERS_TICKET_CREATED = consumer_name("ticketing-orders", "ticket:created")


def consumer_state(profile) -> dict:
    bus = nats(profile)
    try:
        return bus.jetstream(f"CONSUMER.INFO.{EVENTS}.{ORDERS_TICKET_CREATED}")
    finally:
        bus.close()


def components_running(profile) -> set[str]:
    names = set()
    for host in wash_json(profile, "get", "hosts")["hosts"]:
        inventory = wash_json(profile, "get", "inventory", host["id"])
        for c in inventory["inventories"][0]["components"]:
            names.add(c["id"])
    return names


def test_tickets_sold_while_orders_is_down_all_reach_it_once_it_is_back(running_lattice):
    seller, buyer = user(running_lattice), user(running_lattice)
    # orders is up and consuming: its durable consumer exists.
    order_when_replicated(buyer, create_ticket(seller, "before")["id"])
    with deployed(running_lattice, "without-orders", lambda doc: without_component(doc, "orders")):
        eventually(lambda: "ticketing-orders" not in components_running(running_lattice), timeout=60,
                   interval=0.5, what="wadm to stop the orders component")
        sold = [create_ticket(seller, f"while away {i}", 10 + i) for i in range(20)]
        waiting = eventually(lambda: (s := consumer_state(running_lattice))["num_pending"]
                             + s["num_ack_pending"] >= 20 and s, what="the events to wait in the stream")
        assert waiting["num_pending"] + waiting["num_ack_pending"] >= 20

    for t in sold:
        reply = order_when_replicated(buyer, t["id"], timeout=60)
        assert reply.status == 201, reply.body
        assert (reply.json()["ticket"]["title"], reply.json()["ticket"]["version"]) == (t["title"], 0)
    drained = eventually(lambda: (s := consumer_state(running_lattice))["num_pending"] == 0
                         and s["num_ack_pending"] == 0 and s, what="the consumer to drain")
    assert drained["num_redelivered"] == 0, "each event handled once"
    bus = nats(running_lattice)
    try:
        dead = json.loads(bus.request(f"$JS.API.STREAM.INFO.{DEAD_LETTERS}",
                                      json.dumps({"subjects_filter": f"deadletter.{ORDERS_TICKET_CREATED}"}).encode()))
    finally:
        bus.close()
    assert not dead["state"].get("subjects"), "nothing was given up on"
