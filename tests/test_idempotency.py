"""`Idempotency-Key` on POST routes, through the lattice: a client that retries a POST
with the same key gets the first answer, not a second ticket, order or account."""
from __future__ import annotations

import uuid

from client import Client
from helpers import create_ticket, eventually, unique_email

REPLAYED = "idempotent-replayed"


def key() -> str:
    return f"retry-{uuid.uuid4()}"


def post(client: Client, path: str, body, idempotency_key: str | None):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return client.post(path, body, headers=headers)


def my_tickets(client: Client, title: str) -> list[dict]:
    return [t for t in client.get("/api/tickets").json() if t["title"] == title]


def test_a_ticket_created_again_with_the_same_key_is_the_same_ticket(seller, buyer):
    title, k = f"concert {uuid.uuid4().hex[:8]}", key()
    first = post(seller, "/api/tickets", {"title": title, "price": 20}, k)
    again = post(seller, "/api/tickets", {"title": title, "price": 20}, k)
    assert first.status == 201, first.body
    assert (again.status, again.json()) == (201, first.json())
    assert (first.headers.get(REPLAYED), again.headers.get(REPLAYED)) == (None, "true")
    assert [t["id"] for t in my_tickets(seller, title)] == [first.json()["id"]], "one ticket"

    other = post(seller, "/api/tickets", {"title": title, "price": 21}, k)
    assert (other.status, other.error_messages) == (422, ["This Idempotency-Key was used with another request"])
    theirs = post(buyer, "/api/tickets", {"title": title, "price": 20}, k)
    assert theirs.status == 201 and theirs.json()["id"] != first.json()["id"], "a key belongs to its user"


def test_an_order_placed_again_with_the_same_key_is_the_same_order(seller, buyer):
    ticket = create_ticket(seller, title=f"match {uuid.uuid4().hex[:8]}")

    def place():
        # A fresh key per try until orders has the ticket (a 404 would be the key's answer).
        k = key()
        reply = post(buyer, "/api/orders", {"ticketId": ticket["id"]}, k)
        return None if reply.status == 404 else (k, reply)

    k, first = eventually(place, what="the ticket to reach orders")
    assert first.status == 201, first.body
    again = post(buyer, "/api/orders", {"ticketId": ticket["id"]}, k)
    assert (again.status, again.json()["id"], again.headers.get(REPLAYED)) == (201, first.json()["id"], "true")
    assert [o["id"] for o in buyer.get("/api/orders").json()] == [first.json()["id"]], "one order"

    without_key = buyer.post("/api/orders", {"ticketId": ticket["id"]})
    assert (without_key.status, without_key.error_messages) == (400, ["Ticket is already reserved"]), "no key: as before"


def test_a_sign_up_sent_again_with_the_same_key_is_the_same_user(running_lattice):
    email, k = unique_email(), key()
    first_client, retrying_client = Client(running_lattice.http_url), Client(running_lattice.http_url)
    first = post(first_client, "/api/users/signup", {"email": email, "password": "password"}, k)
    again = post(retrying_client, "/api/users/signup", {"email": email, "password": "password"}, k)
    assert first.status == 201, first.body
    assert (again.status, again.json()) == (201, first.json()), "not 'Email in use'"
    assert "session=" in again.headers.get("set-cookie", ""), "the session comes with the replay"
    me = retrying_client.get("/api/users/currentuser").json()["currentUser"]
    assert (me["id"], me["email"]) == (first.json()["id"], email)

    other = post(Client(running_lattice.http_url), "/api/users/signup", {"email": email, "password": "other-pw"}, k)
    assert (other.status, other.error_messages) == (422, ["This Idempotency-Key was used with another request"])


def test_without_a_key_or_with_a_bad_one_posts_behave_as_before(seller, client):
    title = f"play {uuid.uuid4().hex[:8]}"
    ids = {create_ticket(seller, title=title)["id"] for _ in range(2)}
    assert len(ids) == 2 and len(my_tickets(seller, title)) == 2

    email = unique_email()
    assert client.post("/api/users/signup", {"email": email, "password": "password"}).status == 201
    again = Client(client.base_url).post("/api/users/signup", {"email": email, "password": "password"})
    assert (again.status, again.error_messages) == (400, ["Email in use"])

    bad = post(seller, "/api/tickets", {"title": title, "price": 20}, "k" * 256)
    assert bad.status == 400
    assert bad.json()["errors"] == [{"message": "Idempotency-Key must be 1 to 255 printable ASCII characters", "field": "Idempotency-Key"}]
    assert len(my_tickets(seller, title)) == 2, "a refused request changes nothing"
