"""The OpenAPI description (`api/openapi.json`): served at `/api/openapi.json` as committed,
a valid OpenAPI document, listing exactly the routes the services answer, and true to what
they answer: Schemathesis fuzzes every operation against the test lattice and checks each
response's status, content type, headers and body against it."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from client import Client
from helpers import create_ticket, eventually, order_when_replicated, unique_email, user
from manifests import deployed, set_config

ROOT = Path(__file__).resolve().parents[1]
SPEC = json.loads((ROOT / "api" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "delete", "patch")
# What any path under /api that no route serves answers.
UNKNOWN_ROUTE = {"errors": [{"message": "Not Found"}]}
# Generated cases per operation in the fuzzing phase (positive and negative data together),
# on top of the schema's examples and the coverage phase's boundary cases: about 2,500
# requests in all, some 30 seconds on 2 cores.
MAX_EXAMPLES = 100
# Auth's rate limits while fuzzing: windows of a few seconds, so that the run's many failed
# sign-ins from 127.0.0.1 never count against the manifest's 15-minute windows that later
# tests sign in under (the window length is part of a counter's key); one failure per
# account, so the accounts the generator repeats meet 429 and its Retry-After.
FUZZ_LIMITS = {
    "signin_failures_per_account": "1",
    "signin_failures_per_address": "1000000",
    "signin_window_seconds": "3",
    "signups_per_address": "1000000",
    "signup_window_seconds": "3",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in METHODS]


def test_the_description_is_valid_openapi():
    validate(SPEC)


def test_the_lattice_serves_the_committed_description(client):
    reply = client.get("/api/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == SPEC


def routes_in_code() -> set[tuple[str, str]]:
    """The (method, path) arms of each service's `routes.rs` and the API routes of the web
    component, with path variables as `{}`: e.g. `("GET", ["api", "tickets", id])`."""
    sources = [*ROOT.glob("components/*/src/routes.rs"), ROOT / "components/web/src/pages.rs"]
    arm = re.compile(r'\("(GET|POST|PUT|DELETE|PATCH)",\s*\[("api"[^\]]*)\]\)')
    found = set()
    for source in sources:
        for method, segments in arm.findall(source.read_text()):
            parts = [s.strip() for s in segments.split(",")]
            path = "/" + "/".join(p.strip('"') if p.startswith('"') else "{}" for p in parts)
            found.add((method, path))
    return found


def test_the_description_lists_exactly_the_routes_in_the_code():
    documented = {(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path in operations()}
    in_code = routes_in_code()
    assert len(in_code) >= 15, f"the route parser found too little: {in_code}"
    assert documented == in_code, f"only documented: {documented - in_code}; only in code: {in_code - documented}"


def concrete(path: str) -> str:
    """A documented path with its variables filled by a malformed id: a route that serves it
    answers 400 or 401, never the unknown-route 404."""
    return re.sub(r"\{[^}]+\}", "not-an-id", path)


def test_every_documented_operation_is_served(running_lattice):
    signed_in = user(running_lattice)
    for method, path in operations():
        has_body = "requestBody" in SPEC["paths"][path][method.lower()]
        reply = signed_in.request(method, concrete(path), body={} if has_body else None)
        assert not (reply.status == 404 and reply.json() == UNKNOWN_ROUTE), f"{method} {path} is not served"
        assert str(reply.status) in SPEC["paths"][path][method.lower()]["responses"], f"{method} {path}: {reply.status}"


def test_no_undocumented_method_is_served_on_a_documented_path(running_lattice):
    signed_in = user(running_lattice)
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                continue
            reply = signed_in.request(method.upper(), concrete(path), body={})
            assert (reply.status, reply.json()) == (404, UNKNOWN_ROUTE), f"{method.upper()} {path} answers {reply.status}"


# --- the fuzz run ------------------------------------------------------------------------

def second_failed_signin(url: str) -> int:
    """The status of a second wrong password for a fresh account: 429 under FUZZ_LIMITS,
    400 under the manifest's."""
    email = unique_email()
    return [Client(url).post("/api/users/signin", {"email": email, "password": "wrong"}).status for _ in range(2)][1]


@pytest.fixture(scope="module")
def fuzz_limits(running_lattice):
    url = running_lattice.http_url
    with deployed(running_lattice, "fuzz-auth-limits", lambda doc: set_config(doc, "auth", "auth-limits", **FUZZ_LIMITS)):
        # The component reads its config per request, once the host has it.
        eventually(lambda: second_failed_signin(url) == 429, timeout=60, interval=1, what="auth to use the fuzz run's limits")
        yield
    eventually(lambda: second_failed_signin(url) == 400, timeout=60, interval=1, what="auth to use the manifest's limits")


@pytest.fixture(scope="module")
def fuzzer(running_lattice, fuzz_limits):
    """The signed-in user every generated request is sent as (under FUZZ_LIMITS)."""
    return user(running_lattice)


@pytest.fixture(scope="module")
def real_ids(running_lattice, fuzzer) -> dict[str, str]:
    """Resources that exist, so that generated requests also reach the code behind the 404s:
    a ticket of the fuzzer's (to show and edit), another seller's ticket nobody ordered yet,
    an order of the fuzzer's (to show and cancel) and one that payments knows (to pay)."""
    seller = user(running_lattice)
    to_order, to_cancel, to_pay = (create_ticket(seller, title)["id"] for title in ("spare", "cancel", "pay"))
    own_ticket = create_ticket(fuzzer, "own")["id"]
    order_to_cancel = order_when_replicated(fuzzer, to_cancel).json()["id"]
    order_to_pay = order_when_replicated(fuzzer, to_pay).json()["id"]
    eventually(lambda: fuzzer.get(f"/api/payments/orders/{order_to_pay}").status == 200, what="payments to know the order")
    return {
        "/api/tickets/{id}": own_ticket,
        "/api/orders/{id}": order_to_cancel,
        "/api/payments/orders/{orderId}": order_to_pay,
        "ticketId": to_order,
        "orderId": order_to_pay,
    }


@pytest.fixture(scope="module")
def case_counts(request):
    """Requests sent per operation and per phase; printed after the run (also when it fails)."""
    counts: dict[str, Counter[str]] = {"operation": Counter(), "phase": Counter()}
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    phases = ", ".join(f"{phase} {n}" for phase, n in sorted(counts["phase"].items()))
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nschemathesis: {counts['operation'].total()} cases over {len(counts['operation'])} operations ({phases})", bold=True)
        for label, n in sorted(counts["operation"].items()):
            reporter.write_line(f"  {n:5}  {label}")


def count(case_counts, case, phase: str) -> None:
    case_counts["operation"][f"{case.operation.method.upper()} {case.operation.path}"] += 1
    case_counts["phase"][phase] += 1


def with_real_ids(case, real_ids: dict[str, str]):
    """A copy of the case with its ids (in the path, or `ticketId`/`orderId` of an object
    body) replaced by existing ones; None when it names no id."""
    real_path_id = real_ids.get(case.operation.path)
    path = {name: real_path_id for name in case.path_parameters or {}} if real_path_id else {}
    body = case.body
    if isinstance(body, dict) and any(name in body for name in ("ticketId", "orderId")):
        body = {**body, **{name: real_ids[name] for name in ("ticketId", "orderId") if name in body}}
    if not path and body is case.body:
        return None
    return case.operation.Case(
        method=case.method, path_parameters={**(case.path_parameters or {}), **path}, headers=dict(case.headers or {}),
        cookies=dict(case.cookies or {}), query=dict(case.query or {}), body=body, media_type=case.media_type,
    )


# Loaded from the committed file at import (Schemathesis' lazy fixture loader does not work
# with pytest 9.2); the lattice serves the same document, see above.
schema = schemathesis.openapi.from_path(ROOT / "api" / "openapi.json")
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_answers_the_description_allows(case, running_lattice, fuzzer, real_ids, case_counts):
    """Every generated request, valid or not, signed in as `fuzzer`; each one that names an
    id is sent again with an id that exists."""
    base_url, cookies = running_lattice.http_url, {"session": fuzzer.session}
    case.call_and_validate(base_url=base_url, checks=CHECKS, cookies=cookies, timeout=30)
    count(case_counts, case, f"{case._meta.phase.name.value} {case._meta.generation.mode.value}" if case._meta else "explicit")
    again = with_real_ids(case, real_ids)
    if again is not None:
        again.call_and_validate(base_url=base_url, checks=CHECKS, cookies=cookies, timeout=30)
        count(case_counts, again, "again with real ids")


def test_the_lattice_still_serves_after_the_fuzz_run(client, case_counts):
    assert case_counts["operation"].total() > 0, "the fuzz run sent nothing"
    reply = client.get("/api/users/currentuser")
    assert reply.status == 200
    assert reply.json() == {"currentUser": None}
    assert client.get("/api/tickets").status == 200
