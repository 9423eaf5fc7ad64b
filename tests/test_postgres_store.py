"""FerretDB on PostgreSQL (`./ticketing up --store postgres`; the `postgres` profile of
wash.toml): the application unchanged, its documents in a PostgreSQL server the lattice
runs, and a crash of that server costs no acknowledged change. (That lookups by key use
the `_id` index there is the provider's `lookups_by_key_use_the_id_index`, which
`./ticketing test` runs on PostgreSQL too.)

This lattice is the test's own: it starts it and stops it, beside the session's."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from helpers import create_ticket, eventually, lattice_up, order_status, order_when_replicated, user
from lattice import postgres, procs
from lattice.settings import profile


@pytest.fixture(scope="module")
def on_postgres():
    with lattice_up(profile("postgres")) as running:
        yield running


def sql(prof, query: str) -> str:
    """One query's rows, as psql prints them unaligned."""
    psql = [str(postgres.bin_dir() / "psql"), "-X", "-At", "-h", postgres.ADDRESS, "-p", str(prof.ports["postgres"]),
            "-U", postgres.ROLE, "-d", postgres.DATABASE, "-c", query]
    env = dict(os.environ, **postgres.password_env(prof))
    return subprocess.run(psql, capture_output=True, text=True, check=True, env=env).stdout.strip()


def rows_mentioning(prof, schema: str, text: str) -> int:
    """Rows of any table in `schema` (FerretDB: a MongoDB database) whose document holds
    `text` (FerretDB: a collection is a table, a document a jsonb column)."""
    tables = sql(prof, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'").split()
    assert tables, f"FerretDB made no table in schema {schema!r}"
    return sum(int(sql(prof, f"SELECT count(*) FROM {schema}.\"{t}\" WHERE _jsonb::text LIKE '%{text}%'"))
               for t in tables if not t.startswith("_ferretdb"))


def test_the_documents_are_kept_in_postgresql_and_no_sqlite_file_is_made(on_postgres):
    prof = on_postgres
    ticket = create_ticket(user(prof), title="kept in postgresql")
    assert rows_mentioning(prof, "tickets", "kept in postgresql") >= 1
    assert rows_mentioning(prof, "tickets", ticket["id"]) >= 1
    assert not list((prof.data_dir / "ferretdb").glob("*.sqlite*")), "FerretDB wrote SQLite files"


def test_a_purchase_completes_on_postgresql(on_postgres):
    prof = on_postgres
    seller, buyer = user(prof), user(prof)
    ticket = create_ticket(seller, title="sold on postgresql", price=25)
    listed = eventually(lambda: ticket["id"] in {t["id"] for t in seller.get("/api/tickets").json()},
                        what="the new ticket on the first page of the list")
    assert listed
    order = order_when_replicated(buyer, ticket["id"])
    assert order.status == 201, order.body
    pay = lambda: (r := buyer.post("/api/payments", {"orderId": order.json()["id"], "token": "tok_visa"})).status != 404 and r  # noqa: E731
    paid = eventually(pay, what="payments to know the order")
    assert paid.status == 201, paid.body
    eventually(lambda: order_status(buyer, order.json()["id"]) == "complete", timeout=30, what="the order to complete")


def test_a_crash_of_postgresql_loses_no_acknowledged_change(on_postgres):
    prof = on_postgres
    seller = user(prof)
    before = create_ticket(seller, title="made before the crash")
    pid = procs.running(prof, "postgres")
    assert pid, "PostgreSQL is not running"
    os.killpg(pid, signal.SIGKILL)  # the server and every backend at once; nothing is flushed on the way out
    os.waitpid(pid, 0)  # our child (lattice_up started it in this process): reaped, its pid freed
    # The supervisor starts it again; PostgreSQL replays its write-ahead log.
    eventually(lambda: procs.running(prof, "postgres") not in (None, pid), timeout=30,
               what="the supervisor to start PostgreSQL again")
    reread = eventually(lambda: (r := seller.get(f"/api/tickets/{before['id']}")).status == 200 and r,
                        timeout=60, what="the ticket to be readable again")
    assert reread.json()["title"] == "made before the crash"
    after = eventually(lambda: (r := seller.post("/api/tickets", {"title": "made after", "price": 5})).status == 201 and r,
                       timeout=60, what="a create to succeed again")
    assert seller.get(f"/api/tickets/{after.json()['id']}").status == 200
