"""End-to-end fixtures: one isolated lattice (the `test` profile of wash.toml) for the
whole session, started from a clean state and torn down at the end, also on failure."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from lattice.settings import profile  # noqa: E402

from client import Client  # noqa: E402
from helpers import lattice_up, user  # noqa: E402
from stripe_front import StripeFront  # noqa: E402


@pytest.fixture(scope="session")
def test_profile():
    return profile("test")


@pytest.fixture(scope="session")
def stripe(test_profile):
    """The Stripe the test lattice's payments-stripe provider talks to: stripe-mock, behind
    a front that declines `tok_chargeDeclined` as Stripe's test mode does."""
    front = StripeFront(f"http://127.0.0.1:{test_profile.ports['stripe_mock']}")
    os.environ["TICKETING_STRIPE_API_BASE"] = front.url
    yield front
    front.close()


@pytest.fixture(scope="session")
def running_lattice(test_profile, stripe):
    """Brings the test lattice up (artifacts are built by `./ticketing test`)."""
    with lattice_up(test_profile) as running:
        yield running


@pytest.fixture
def client(running_lattice) -> Client:
    """A fresh browser-like client (own cookie jar) against the test lattice."""
    return Client(running_lattice.http_url)


@pytest.fixture
def seller(running_lattice) -> Client:
    """A signed-in user with a fresh identity (one who sells)."""
    return user(running_lattice)


@pytest.fixture
def buyer(running_lattice) -> Client:
    """Another signed-in user with a fresh identity (one who buys)."""
    return user(running_lattice)
