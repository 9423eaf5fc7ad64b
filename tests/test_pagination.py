"""Paged lists through the running lattice: GET /api/tickets over the index of tickets for
sale and GET /api/orders over a user's numbered orders, newest first, a bounded page
size, the next page's cursor in headers; and the web client's Next links."""
from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from helpers import create_ticket, eventually, order_when_replicated

ERROR_LIMIT = {"message": "limit must be a whole number from 1 to 100", "field": "limit"}


def walk(client, path: str, limit: int, stop=lambda item: False) -> list[list[dict]]:
    """Every page of `path` by its `X-Next-Cursor` (until `stop` holds for an item),
    checking that `Link` says the same."""
    pages, url = [], f"{path}?limit={limit}"
    while True:
        reply = client.get(url)
        assert reply.status == 200, reply.body
        page = reply.json()
        assert isinstance(page, list) and len(page) <= limit
        pages.append(page)
        cursor = reply.headers.get("x-next-cursor")
        if cursor is None or any(stop(item) for item in page):
            return pages
        url = f"{path}?limit={limit}&cursor={quote(cursor)}"
        assert reply.headers["link"] == f'<{url}>; rel="next"'
        assert len(page) == limit, "only the last page is short"


def ids(items) -> list[str]:
    return [item["id"] for item in items]


def test_ticket_pages_list_each_ticket_for_sale_once_newest_first(seller, buyer, client):
    made = [create_ticket(seller, f"paged {i}") for i in range(25)]
    oldest = made[0]["id"]
    reserved = [made[3], made[17]]
    orders = [order_when_replicated(buyer, t["id"]).json() for t in reserved]

    def my_tickets_walked():
        pages = walk(client, "/api/tickets", 7, stop=lambda t: t["id"] <= oldest)
        return [t for t in (t for page in pages for t in page) if t["id"] >= oldest]

    newest_first = [t["id"] for t in reversed(made) if t not in reserved]
    eventually(lambda: ids(my_tickets_walked()) == newest_first, what="the reserved tickets to leave the pages")
    listed = my_tickets_walked()
    assert len(set(ids(listed))) == len(listed) == 23, "each once"
    assert all("orderId" not in t for t in listed)
    assert ids(listed) == sorted(ids(listed), reverse=True), "ids begin with the creation time"

    # No paging parameters: the first 20, as the same plain array as before paging.
    plain = client.get("/api/tickets")
    assert plain.status == 200 and ids(plain.json()) == newest_first[:20]
    assert plain.headers["x-next-cursor"] and plain.headers["link"].endswith('; rel="next"')

    # A released ticket is back, in its place by creation time.
    assert buyer.delete(f"/api/orders/{orders[1]['id']}").status == 204
    back = [t["id"] for t in reversed(made) if t is not reserved[0]]
    eventually(lambda: ids(my_tickets_walked()) == back, what="the released ticket to come back")


def test_a_users_orders_page_newest_first(seller, buyer):
    tickets = [create_ticket(seller, f"ordered {i}") for i in range(23)]
    orders = [order_when_replicated(buyer, t["id"]).json() for t in tickets]
    pages = walk(buyer, "/api/orders", 10)
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [ids(p) for p in pages] == [ids(orders[::-1][i:i + 10]) for i in (0, 10, 20)]
    assert pages[0][0]["ticket"]["id"] == tickets[-1]["id"], "tickets populated as before"
    plain = buyer.get("/api/orders")
    assert ids(plain.json()) == ids(orders[::-1][:20]), "no parameters: the first 20, a plain array"
    assert ids(buyer.get(f"/api/orders?cursor={plain.headers['x-next-cursor']}").json()) == ids(orders[2::-1])

    # My orders in the web client: the first page, and Next to the older ones.
    html = buyer.get("/orders").body.decode()
    assert "ordered 22" in html and "ordered 2<" not in html
    next_link = re.search(r'<a href="(/orders\?cursor=[^"]+)" rel="next">', html)
    assert next_link, html
    older = buyer.get(next_link.group(1).replace("&amp;", "&")).body.decode()
    assert all(f"ordered {i}<" in older for i in range(3)) and "ordered 22" not in older
    assert 'rel="next"' not in older and '<a href="/orders" rel="first">' in older


def test_bad_paging_parameters_are_a_400_naming_them(client, buyer):
    for who, path in ((client, "/api/tickets"), (buyer, "/api/orders")):
        for limit in ("0", "101", "-1", "abc", "", "2.5"):
            reply = who.get(f"{path}?limit={quote(limit)}")
            assert (reply.status, reply.json()) == (400, {"errors": [ERROR_LIMIT]}), (path, limit)
        for cursor in ("nope", "", "0", "1.zz"):
            reply = who.get(f"{path}?cursor={quote(cursor)}")
            assert reply.status == 400, (path, cursor)
            assert [e.get("field") for e in reply.json()["errors"]] == ["cursor"], (path, cursor)
        assert who.get(f"{path}?limit=100").status == 200, "the largest page is fine"


def test_the_landing_page_links_to_older_tickets(seller, client):
    run = uuid.uuid4().hex[:6]
    made = [create_ticket(seller, f"landing {run} {i}") for i in range(22)]
    html = client.get("/").body.decode()
    assert f"landing {run} 21" in html and f"landing {run} 2<" in html and f"landing {run} 1<" not in html
    next_link = re.search(r'<a href="(/\?cursor=[^"]+)" rel="next">', html)
    assert next_link, html
    older = client.get(next_link.group(1).replace("&amp;", "&"))
    assert older.status == 200
    page = older.body.decode()
    assert f"landing {run} 1<" in page and f"landing {run} 0<" in page and f"landing {run} 21" not in page
    assert '<a href="/" rel="first">' in page
    assert f'href="/tickets/{made[0]["id"]}"' in page
    assert client.get("/?cursor=bogus").status == 400, "an edited address"
