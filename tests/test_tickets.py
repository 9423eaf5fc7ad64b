"""Tickets through the running lattice: reference cases 13-35 translated to HTTP and
events (§7), plus the reserved-ticket rules seen through real orders."""
from __future__ import annotations

from helpers import create_ticket, eventually, new_id, order_when_replicated, ticket


# --- create (13-19) --------------------------------------------------------------------

def test_13_post_route_exists(seller):
    assert seller.post("/api/tickets", {}).status != 404


def test_14_anonymous_cannot_create(client):
    reply = client.post("/api/tickets", {"title": "concert", "price": 10})
    assert reply.status == 401
    assert reply.error_messages == ["Not authorized"]


def test_15_signed_in_is_not_401(seller):
    assert seller.post("/api/tickets", {}).status != 401


def test_16_invalid_title_is_400(seller):
    for body in ({"title": "", "price": 10}, {"price": 10}):
        reply = seller.post("/api/tickets", body)
        assert reply.status == 400
        assert {"message": "Title is required", "field": "title"} in reply.json()["errors"]


def test_17_invalid_price_is_400(seller):
    for body in ({"title": "concert", "price": -10}, {"title": "concert"}, {"title": "concert", "price": "cheap"}):
        reply = seller.post("/api/tickets", body)
        assert reply.status == 400, body
        assert {"message": "Price must be greater than 0", "field": "price"} in reply.json()["errors"]


def test_a_title_over_100_characters_is_400_naming_title(seller, client):
    created = create_ticket(seller)
    refused = {"errors": [{"message": "Title must be at most 100 characters", "field": "title"}]}
    for title in ("x" * 101, "x" * 10_000):
        reply = seller.post("/api/tickets", {"title": title, "price": 10})
        assert (reply.status, reply.json()) == (400, refused)
        reply = seller.put(f"/api/tickets/{created['id']}", {"title": title, "price": 10})
        assert (reply.status, reply.json()) == (400, refused)
    assert ticket(seller, created["id"]) == created, "nothing changed"
    assert create_ticket(seller, "é" * 100)["title"] == "é" * 100


def test_a_200000_character_title_is_refused_as_too_large_and_stored_nowhere(seller, client):
    title = "x" * 200_000
    reply = seller.post("/api/tickets", {"title": title, "price": 10})
    assert reply.status == 413, "over the 16 KiB bound of a JSON body"
    assert reply.json() == {"errors": [{"message": "Request body is too large"}]}
    assert all(t["title"] != title for t in client.get("/api/tickets").json())


def test_a_price_over_999999_99_is_400(seller):
    reply = seller.post("/api/tickets", {"title": "concert", "price": 1_000_000})
    assert reply.status == 400
    assert reply.json() == {"errors": [{"message": "Price must be at most 999999.99", "field": "price"}]}


def test_18_creates_a_ticket(seller):
    created = create_ticket(seller, "concert", 20)
    assert created["title"] == "concert" and created["price"] == 20 and created["version"] == 0
    assert created["userId"] == seller.get("/api/users/currentuser").json()["currentUser"]["id"]
    assert ticket(seller, created["id"]) == created


def test_a_numeric_string_price_is_stored_as_a_number(seller):
    assert create_ticket(seller, "concert", "10.00")["price"] == 10


def test_19_creating_publishes_ticket_created(seller, buyer):
    # Observed through its listener: orders learns about the ticket and can reserve it.
    created = create_ticket(seller)
    assert order_when_replicated(buyer, created["id"]).status == 201


# --- show and list (20-22) -------------------------------------------------------------

def test_20_unknown_ticket_is_404(client):
    reply = client.get(f"/api/tickets/{new_id()}")
    assert reply.status == 404
    assert reply.error_messages == ["Not Found"]


def test_malformed_id_is_400(client):
    reply = client.get("/api/tickets/not-an-id")
    # The reference answers "Something went wrong"; we say what is wrong.
    assert reply.status == 400
    assert reply.error_messages == ["Invalid id: expected 24 hexadecimal characters"]


def test_21_shows_the_ticket(seller, client):
    created = create_ticket(seller, "concert", 20)
    shown = ticket(client, created["id"])
    assert (shown["title"], shown["price"]) == ("concert", 20)


def test_22_lists_tickets(seller, client):
    ids = {create_ticket(seller, f"show {i}", 10 + i)["id"] for i in range(3)}
    listed = client.get("/api/tickets")
    assert listed.status == 200
    assert ids <= {t["id"] for t in listed.json()}


def test_the_list_hides_reserved_tickets_until_released(seller, buyer, client):
    created = create_ticket(seller)
    order = order_when_replicated(buyer, created["id"]).json()
    listed = lambda: {t["id"] for t in client.get("/api/tickets").json()}  # noqa: E731
    eventually(lambda: created["id"] not in listed(), what="the reserved ticket to leave the list")
    assert buyer.delete(f"/api/orders/{order['id']}").status == 204
    eventually(lambda: created["id"] in listed(), what="the released ticket to come back")


# --- update (23-29) --------------------------------------------------------------------

def test_23_update_of_unknown_ticket_is_404(seller):
    assert seller.put(f"/api/tickets/{new_id()}", {"title": "x", "price": 10}).status == 404


def test_24_anonymous_cannot_update(client):
    assert client.put(f"/api/tickets/{new_id()}", {"title": "x", "price": 10}).status == 401


def test_25_only_the_owner_can_update(seller, buyer):
    created = create_ticket(seller)
    reply = buyer.put(f"/api/tickets/{created['id']}", {"title": "mine now", "price": 1})
    assert reply.status == 401
    assert ticket(seller, created["id"])["title"] == "concert"


def test_26_invalid_update_is_400(seller):
    created = create_ticket(seller)
    assert seller.put(f"/api/tickets/{created['id']}", {"title": "", "price": 10}).status == 400
    reply = seller.put(f"/api/tickets/{created['id']}", {"title": "ok", "price": -10})
    assert reply.status == 400
    assert reply.error_messages == ["Price must be provided and must be greater than 0"]
    assert ticket(seller, created["id"])["version"] == 0, "nothing changed"


def test_27_updates_the_ticket_and_its_version(seller):
    created = create_ticket(seller)
    reply = seller.put(f"/api/tickets/{created['id']}", {"title": "new title", "price": 100})
    assert reply.status == 200
    assert (reply.json()["title"], reply.json()["price"], reply.json()["version"]) == ("new title", 100, 1)
    shown = ticket(seller, created["id"])
    assert (shown["title"], shown["price"], shown["version"]) == ("new title", 100, 1)


def test_28_updating_publishes_ticket_updated(seller, buyer):
    # Observed through orders' replica: the order shows the edited title and price.
    created = create_ticket(seller)
    assert seller.put(f"/api/tickets/{created['id']}", {"title": "edited", "price": 35.5}).status == 200
    order = order_when_replicated(buyer, created["id"]).json()

    def replica():
        return buyer.get(f"/api/orders/{order['id']}").json()["ticket"]
    shown = eventually(lambda: replica()["title"] == "edited" and replica(), what="orders to apply ticket:updated")
    assert shown["price"] == 35.5 and shown["version"] >= 1


def test_29_a_reserved_ticket_cannot_be_edited(seller, buyer):
    created = create_ticket(seller)
    order = order_when_replicated(buyer, created["id"]).json()
    eventually(lambda: ticket(seller, created["id"]).get("orderId") == order["id"], what="the reservation")
    reply = seller.put(f"/api/tickets/{created['id']}", {"title": "sneaky", "price": 1})
    assert reply.status == 400
    assert reply.error_messages == ["Cannot edit a reserved ticket"]


# --- the ticket side of reservations (32-35) --------------------------------------------

def test_32_to_35_reserve_release_and_edit_again(seller, buyer):
    created = create_ticket(seller)
    order = order_when_replicated(buyer, created["id"]).json()
    reserved = eventually(lambda: (t := ticket(seller, created["id"])).get("orderId") == order["id"] and t,
                          what="order:created to reserve the ticket")
    assert reserved["version"] == 1
    assert buyer.delete(f"/api/orders/{order['id']}").status == 204
    released = eventually(lambda: "orderId" not in (t := ticket(seller, created["id"])) and t,
                          what="order:cancelled to release the ticket")
    assert released["version"] == 2
    edited = seller.put(f"/api/tickets/{created['id']}", {"title": "again", "price": 25})
    assert edited.status == 200 and edited.json()["version"] == 3
