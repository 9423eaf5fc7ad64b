"""Nothing lost to a fault (issue 14): whole purchases (a buyer signs up, a seller lists a
ticket, the buyer orders and pays it, then signs in again) run while NATS, FerretDB or
Redis restarts, timed to hit sign-ups, orders and payments in flight, or while the
keyvalue provider is killed. Clients retry as real ones do (5xx, broken connections,
each POST with an `Idempotency-Key`). Every purchase completes, exactly once: no order
lost (a change stored always gets its event out, through the outbox), no ticket or order
created twice, no order left locked and no e-mail left claimed without its user."""
from __future__ import annotations

import pytest

from lattice.drill import SCENARIOS, run_fault

PURCHASES = 20

CASES = [(name, inject, phase) for name, inject, phase in SCENARIOS if name != "host killed"]


@pytest.mark.parametrize("name, inject, phase", CASES, ids=[f"{n} while {p}" for n, _, p in CASES])
def test_every_purchase_completes_once(running_lattice, name, inject, phase):
    outcome = run_fault(running_lattice, name, inject, PURCHASES, phase)
    unfinished = [(p.title, p.phase, p.failure) for p in outcome.purchases if not p.completed]
    assert unfinished == [], f"{len(unfinished)} of {PURCHASES} purchases lost"
    assert outcome.duplicated == 0, "a retried POST listed a second ticket"
