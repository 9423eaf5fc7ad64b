"""Shared pieces of the end-to-end tests: lattices, users, waiting for events, raw NATS."""
from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid

import pytest

from client import Client
from lattice import lattice, sessions
from lattice.settings import profile
from lattice.nats import Nats


@contextlib.contextmanager
def lattice_up(prof):
    """The profile's lattice, started from a clean state, and stopped at the end, also on
    failure (unless TICKETING_KEEP_TEST_LATTICE=1, to look at it afterwards). Only the
    test profile talks to the session's decline-simulating Stripe front (conftest); the
    others use their own stripe-mock."""
    lattice.down(prof)
    shutil.rmtree(prof.state_dir, ignore_errors=True)
    prof = profile(prof.name)  # as wash.toml says, not a store an earlier `up` recorded
    front = None if prof.name == "test" else os.environ.pop("TICKETING_STRIPE_API_BASE", None)
    try:
        try:
            lattice.up(prof)
        except SystemExit as e:
            # Reported once, as the setup error of every test that needs it.
            pytest.fail(f"the {prof.name} lattice did not come up: {e}", pytrace=False)
        if front:
            os.environ["TICKETING_STRIPE_API_BASE"] = front
        yield prof
    finally:
        if front:
            os.environ["TICKETING_STRIPE_API_BASE"] = front  # when `up` failed
        if os.environ.get("TICKETING_KEEP_TEST_LATTICE") != "1":
            lattice.down(prof)


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@test.com"


def new_id() -> str:
    """A valid id that no record has."""
    return uuid.uuid4().hex[:24]


def user(profile) -> Client:
    """A signed-in client with a fresh identity, its session minted with the lattice's key
    (signing up hashes a password, which is slow; auth's own tests cover that path)."""
    return Client(profile.http_url, session=sessions.mint(profile, new_id(), unique_email()))


def user_id(client: Client) -> str:
    return client.get("/api/users/currentuser").json()["currentUser"]["id"]


def eventually(check, timeout: float = 20, interval: float = 0.1, what: str = "the condition"):
    """Polls `check` until it returns something truthy (returned), or fails after `timeout`
    seconds. Events travel asynchronously; an event refused once comes again later."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def create_ticket(seller: Client, title: str = "concert", price=20) -> dict:
    reply = seller.post("/api/tickets", {"title": title, "price": price})
    assert reply.status == 201, reply.body
    return reply.json()


def order_when_replicated(buyer: Client, ticket_id: str, timeout: float = 20):
    """POST /api/orders, retried while orders has not received `ticket:created` yet (404)."""
    def attempt():
        reply = buyer.post("/api/orders", {"ticketId": ticket_id})
        return None if reply.status == 404 else reply
    return eventually(attempt, timeout=timeout, what=f"ticket {ticket_id} to reach orders")


def order_status(client: Client, order_id: str) -> str:
    return client.get(f"/api/orders/{order_id}").json()["status"]


def ticket(client: Client, ticket_id: str) -> dict:
    reply = client.get(f"/api/tickets/{ticket_id}")
    assert reply.status == 200, reply.body
    return reply.json()


def nats(profile) -> Nats:
    return Nats(profile.ports["nats"], profile.address)
