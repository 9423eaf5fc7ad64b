"""A lattice across three "machines" (the `machines` profile, scripts/lattice/machines.py):
each host in a network namespace of its own, with its own address, joining the lattice
through its machine's NATS server, clustered with the others over the network, and
loading every artifact from the registry over the network. A purchase crosses all three
machines.

This lattice is the test's own: it starts it (making the namespaces) and stops it
(removing them), beside the session's test lattice."""
from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from client import Client
from helpers import eventually, lattice_up, new_id, unique_email
from lattice import machines, procs, registry, sessions
from lattice.processes import host_names
from lattice.settings import profile
from lattice.washcli import wash_json


@pytest.fixture(scope="module")
def spread_lattice():
    with lattice_up(profile("machines")) as running:  # down also removes the namespaces
        yield running


def monitor(address: str, prof, what: str) -> dict:
    """A NATS server's monitoring endpoint (`connz`, `routez`, `jsz`)."""
    url = f"http://{address}:{prof.ports['nats_monitor']}/{what}{'&' if '?' in what else '?'}limit=1024"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


def host_ids_on(address: str, prof) -> set[str]:
    """The wasmCloud hosts among a NATS server's clients: each subscribes to its own
    control subjects, which end in its id."""
    subs = monitor(address, prof, "connz?subs=1")["connections"]
    return {s.rsplit(".", 1)[-1] for c in subs for s in c.get("subscriptions_list", []) if ".host." in s and s.rsplit(".", 1)[-1].startswith("N")}


def on(prof, index: int, user_id: str, email: str) -> Client:
    """A signed-in client talking to machine `index`'s address."""
    return Client(f"http://{prof.machine_address(index)}:{prof.ports['http']}", session=sessions.mint(prof, user_id, email))


def test_each_host_runs_on_its_own_machine_and_loads_from_the_registry(spread_lattice):
    prof = spread_lattice
    for index, host in enumerate(host_names(prof), start=1):
        pid = procs.running(prof, host)
        found = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.strip()
        assert found == machines.namespace(index), (host, found)
    addresses = {prof.machine_address(i) for i in range(1, prof.machines + 1)}
    # Each host, and every provider it runs (with its own connection for events), is a
    # client of its own machine's NATS server...
    for index in range(1, prof.machines + 1):
        own = prof.machine_address(index)
        clients = {c["ip"] for c in monitor(own, prof, "connz")["connections"]}
        assert clients == {own}, (own, clients)
        assert host_ids_on(own, prof), f"no wasmCloud host is a client of {own}'s NATS"
    # ... none of the central one, which is routed to all three: one NATS cluster, whose
    # JetStream has a peer on every machine.
    central = prof.address
    assert not addresses & {c["ip"] for c in monitor(central, prof, "connz")["connections"]}
    assert {r["ip"] for r in monitor(central, prof, "routez")["routes"]} == addresses
    assert monitor(central, prof, "jsz")["meta_cluster"]["cluster_size"] == prof.machines + 1
    # wadm put every component and provider on every machine, each pulled from the registry.
    inventories = wash_json(prof, "get", "inventory")["inventories"]
    assert len(inventories) == prof.machines
    where = f"{registry.address(prof)}/{registry.NAMESPACE}/"
    for inventory in inventories:
        assert {c["name"] for c in inventory["components"]} == {"auth", "tickets", "orders", "payments", "web", "expiration"}
        ours = [p for p in inventory["providers"] if not p["image_ref"].startswith(("wasmcloud+builtin://", "http-"))]
        assert len(ours) == 4, inventory["providers"]
        for entry in inventory["components"] + ours:
            assert entry["image_ref"].startswith(where), entry


def test_a_purchase_crosses_three_machines(spread_lattice):
    prof = spread_lattice
    seller_id, buyer_id = new_id(), new_id()
    seller_email, buyer_email = unique_email(), unique_email()
    seller = on(prof, 1, seller_id, seller_email)
    buyer_2, buyer_3 = on(prof, 2, buyer_id, buyer_email), on(prof, 3, buyer_id, buyer_email)

    created = seller.post("/api/tickets", {"title": "three machines", "price": 30})
    assert created.status == 201, created.body
    ticket_id = created.json()["id"]

    def order():
        reply = buyer_2.post("/api/orders", {"ticketId": ticket_id})
        return reply if reply.status == 201 else None
    placed = eventually(order, timeout=30, what="orders (machine 2) to know the ticket").json()

    def pay():
        reply = buyer_3.post("/api/payments", {"orderId": placed["id"], "token": "tok_visa"})
        return reply if reply.status != 404 else None
    paid = eventually(pay, timeout=30, what="payments (machine 3) to know the order")
    assert paid.status == 201, paid.body

    status = lambda: on(prof, 1, buyer_id, buyer_email).get(f"/api/orders/{placed['id']}").json()["status"]  # noqa: E731
    eventually(lambda: status() == "complete", timeout=30, what="the order to complete")
    page = Client(f"http://{prof.machine_address(3)}:{prof.ports['http']}").get(f"/tickets/{ticket_id}")
    assert page.status == 200 and "three machines" in page.body.decode(), "web renders from its own machine's API"
