"""Replacing a component while traffic flows: a new image of the tickets component is
deployed (a new manifest version, as after a rebuild) and then the old one again, while
readers and writers keep calling it, and not one request fails.

Make-before-break on every host (our patches of wasmcloud-host 0.27.1, see
patches/README.md): wadm asks each host for the new image and for the old one at zero;
the host builds the new instance, switches its HTTP routes to it in one step (requests
already running finish on the old one), lets the old instance's wRPC serving drain for
a few seconds, and ignores the stale request to stop."""
from __future__ import annotations

import threading
import time

from client import Client
from helpers import create_ticket, eventually, user
from lattice import registry
from lattice.health import wait_until_every_host_runs_everything
from lattice.settings import BUILD_DIR
from lattice.washcli import wash_json
from manifests import deployed


def tickets_images(profile) -> list[str]:
    """The tickets image each host runs ("" for a host without it)."""
    images = []
    for host in wash_json(profile, "get", "hosts")["hosts"]:
        components = wash_json(profile, "get", "inventory", host["id"])["inventories"][0]["components"]
        images.append(next((c["image_ref"] for c in components if c["id"] == "ticketing-tickets"), ""))
    return images


def with_new_tickets_image(profile):
    """An edit pointing tickets at a new image: the same code under a new tag, pushed to
    the lattice's registry as a platform team pushes a release."""
    def edit(doc: dict) -> None:
        tickets = next(c for c in doc["spec"]["components"] if c["name"] == "tickets")
        current_tag = tickets["properties"]["image"].rsplit(":", 1)[1]
        tickets["properties"]["image"] = registry.push(profile, BUILD_DIR / "tickets.wasm", "tickets",
                                                       tag=f"{current_tag}-swapped")
    return edit


def test_tickets_is_replaced_twice_under_load_without_a_failed_request(running_lattice):
    # From a lattice at full strength (a test before may have restarted a host).
    wait_until_every_host_runs_everything(running_lattice)
    seller = user(running_lattice)
    known = create_ticket(seller)
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def read():
        client = Client(running_lattice.http_url)
        while not stop.is_set():
            status = client.get(f"/api/tickets/{known['id']}").status
            with lock:
                statuses.append(status)

    def write():
        while not stop.is_set():
            status = seller.post("/api/tickets", {"title": "swap load", "price": 5}).status
            with lock:
                statuses.append(status)
            time.sleep(0.02)

    workers = [threading.Thread(target=read) for _ in range(3)] + [threading.Thread(target=write)]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        with deployed(running_lattice, "swapped-tickets", with_new_tickets_image(running_lattice)):
            eventually(lambda: all("swapped" in i for i in tickets_images(running_lattice)), timeout=60,
                       interval=0.5, what="the new tickets image to run on every host")
            time.sleep(2)
        eventually(lambda: all(i and "swapped" not in i for i in tickets_images(running_lattice)), timeout=60,
                   interval=0.5, what="the old tickets image to run again on every host")
        time.sleep(2)
    finally:
        stop.set()
        for w in workers:
            w.join()
    failed = [s for s in statuses if s not in (200, 201)]
    assert len(statuses) > 100, len(statuses)
    assert not failed, f"{len(failed)} of {len(statuses)} requests failed: {sorted(set(failed))}"
