"""Browser hardening of the web client, over plain HTTP: the security headers on every
page, asset and redirect, and form posts from another site refused without effect."""
from __future__ import annotations

import http.client
import urllib.parse
import uuid

import pytest

from helpers import create_ticket, order_when_replicated, ticket, user

HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
EVIL = "http://evil.example"


def fetch(profile, method: str, path: str, form: dict | None = None, session: str | None = None,
          headers: dict | None = None) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed (their headers are checked too)."""
    conn = http.client.HTTPConnection("127.0.0.1", profile.ports["http"], timeout=30)
    hdrs = dict(headers or {})
    if session:
        hdrs["cookie"] = f"session={session}"
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=hdrs)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read().decode()
    finally:
        conn.close()


def directives(csp: str) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in csp.split(";") if d.strip()}


@pytest.fixture(scope="module")
def pages(running_lattice):
    """Each kind of page as (what, path, session): a seller's ticket, a buyer's order."""
    seller, buyer = user(running_lattice), user(running_lattice)
    ticket_id = create_ticket(seller, f"Headers {uuid.uuid4().hex[:6]}", 15)["id"]
    reply = order_when_replicated(buyer, ticket_id)
    assert reply.status == 201, reply.body
    order_id = reply.json()["id"]
    return [
        ("landing", "/", None),
        ("sign up", "/auth/signup", None),
        ("sign in", "/auth/signin", None),
        ("new ticket", "/tickets/new", seller.session),
        ("ticket", f"/tickets/{ticket_id}", buyer.session),
        ("order", f"/orders/{order_id}", buyer.session),
        ("my orders", "/orders", buyer.session),
        ("sign out", "/auth/signout", buyer.session),
        ("not found", "/no/such/page", None),
        ("script", "/static/app.js", None),
        ("stylesheet", "/static/app.css", None),
        ("redirect to sign in", "/orders", None),
    ]


def test_every_page_asset_and_redirect_carries_the_security_headers(running_lattice, pages):
    for what, path, session in pages:
        status, headers, body = fetch(running_lattice, "GET", path, session=session)
        expected = {"not found": 404, "redirect to sign in": 303}.get(what, 200)
        assert status == expected, (what, status, body[:300])
        for name, value in HEADERS.items():
            assert headers.get(name) == value, (what, name, headers)
        assert "camera=()" in headers.get("permissions-policy", ""), what
        csp = directives(headers.get("content-security-policy", ""))
        assert csp.get("script-src") == "'self' https://js.stripe.com https://*.js.stripe.com", (what, csp)
        assert csp.get("default-src") == "'self'" and csp.get("style-src") == "'self'", (what, csp)
        assert csp.get("object-src") == "'none'" and csp.get("base-uri") == "'none'", (what, csp)
        assert csp.get("form-action") == "'self'" and csp.get("frame-ancestors") == "'none'", (what, csp)
        if headers.get("content-type", "").startswith("text/html"):
            assert "<script>" not in body and "onclick" not in body.lower(), what


@pytest.mark.parametrize("cross_site", [
    {"sec-fetch-site": "cross-site", "origin": EVIL},
    {"sec-fetch-site": "same-site", "origin": "http://shop.127.0.0.1.nip.io"},
    {"origin": EVIL},  # a browser that sends only Origin
    {"origin": "null"},  # a sandboxed frame
], ids=["sec-fetch-site-cross-site", "sec-fetch-site-same-site", "origin-only", "origin-null"])
def test_a_cross_site_form_post_is_refused_and_changes_nothing(running_lattice, cross_site):
    seller, buyer = user(running_lattice), user(running_lattice)
    title = f"Forged {uuid.uuid4().hex[:8]}"
    status, headers, body = fetch(running_lattice, "POST", "/tickets/new", {"title": title, "price": "5"},
                                  session=seller.session, headers=cross_site)
    assert status == 403, body[:300]
    assert "Form refused" in body and "sent from another website" in body
    assert headers.get("x-frame-options") == "DENY" and "location" not in headers
    assert title not in [t["title"] for t in seller.get("/api/tickets").json()]

    ticket_id = create_ticket(seller, f"Target {uuid.uuid4().hex[:8]}", 7)["id"]
    status, _, _ = fetch(running_lattice, "POST", f"/tickets/{ticket_id}/purchase", {},
                         session=buyer.session, headers=cross_site)
    assert status == 403
    assert buyer.get("/api/orders").json() == [], "no order was made"
    assert ticket(seller, ticket_id).get("orderId") is None, "the ticket is not reserved"

    status, headers, _ = fetch(running_lattice, "POST", "/auth/signout", {}, session=buyer.session, headers=cross_site)
    assert status == 403 and "set-cookie" not in headers


def test_a_form_post_from_our_own_pages_goes_through(running_lattice):
    """The same post, from our origin: by Sec-Fetch-Site, by Origin alone, or with neither
    (curl, old browsers), so the refusals above are not a broken form."""
    seller = user(running_lattice)
    own = f"http://127.0.0.1:{running_lattice.ports['http']}"
    for headers in [{"sec-fetch-site": "same-origin", "origin": own}, {"origin": own}, {}]:
        title = f"Own {uuid.uuid4().hex[:8]}"
        status, response_headers, body = fetch(running_lattice, "POST", "/tickets/new", {"title": title, "price": "5"},
                                               session=seller.session, headers=headers)
        assert (status, response_headers.get("location")) == (303, "/"), (headers, body[:300])
        assert title in [t["title"] for t in seller.get("/api/tickets").json()], headers
    # Behind a TLS front, the browser's origin is https.
    status, _, body = fetch(running_lattice, "POST", "/tickets/new", {"title": f"Tls {uuid.uuid4().hex[:8]}", "price": "5"},
                            session=seller.session, headers={"origin": own.replace("http:", "https:"), "x-forwarded-proto": "https"})
    assert status == 303, body[:300]
