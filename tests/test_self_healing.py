"""A provider gets every link whenever it starts: a link put while its process is
starting (the host gathered the links to hand over, the provider has not subscribed to
new ones yet) reaches it all the same, and a killed provider process comes back by itself."""
from __future__ import annotations

import os
import signal
import time

from client import Client
from helpers import eventually
from lattice.health import wait_for_http
from lattice.processes import provider_pids
from lattice.washcli import wash

GATEWAY = "ticketing-http_gateway"
AUTH = "ticketing-auth"


def gateway_pids(profile) -> list[int]:
    return provider_pids(profile, "http_gateway")


def routed_to_auth(profile, prefix: str) -> bool:
    """Does `prefix` reach auth (its JSON 404) rather than the web component's page?"""
    try:
        reply = Client(profile.http_url).get(f"{prefix}/x", timeout=2)
    except OSError:
        return False
    return reply.status == 404 and reply.headers.get("content-type") == "application/json"


def test_links_put_while_the_gateway_restarts_reach_it(running_lattice):
    profile = running_lattice
    names = []
    try:
        # Delays spread over the moment the restarted process starts and subscribes.
        for attempt, delay in enumerate((0.0, 0.05, 0.1, 0.2, 0.3, 0.5)):
            [pid] = gateway_pids(profile)
            name = f"race-{attempt}"
            names.append(name)
            wash(profile, "config", "put", name, f"path=/{name}")
            os.kill(pid, signal.SIGKILL)
            time.sleep(delay)
            wash(profile, "link", "put", GATEWAY, AUTH, "wasi", "http", "--interface", "incoming-handler",
                         "--link-name", name, "--source-config", name)
            eventually(lambda: routed_to_auth(profile, f"/{name}"), timeout=20, interval=0.2,
                       what=f"route /{name} (link put {delay:.2f}s after the gateway was killed)")
            # The process came back by itself, with every earlier route.
            assert gateway_pids(profile) and gateway_pids(profile) != [pid]
            assert Client(profile.http_url).get("/api/users/currentuser").status == 200
            assert all(routed_to_auth(profile, f"/{earlier}") for earlier in names)
    finally:
        for name in names:
            wash(profile, "link", "del", GATEWAY, "wasi", "http", "--link-name", name, check=False)
        wait_for_http(profile)
