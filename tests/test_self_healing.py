"""A provider gets every link whenever it starts: a link put while its process is
starting (the host gathered the links to hand over, the provider has not subscribed to
new ones yet) reaches it all the same, and a killed provider process comes back by itself.

The messaging provider shows what it got: each link it receives becomes a durable
JetStream consumer per subscribed subject."""
from __future__ import annotations

import os
import signal
import time

from client import Client
from helpers import eventually
from lattice.events import EVENTS, consumer_name
from lattice.nats import Nats
from lattice.processes import provider_pids
from lattice.washcli import wash

MESSAGING = "ticketing-messaging_jetstream"
SUBSCRIBER = "ticketing-expiration"


def messaging_pids(profile) -> list[int]:
    return provider_pids(profile, "messaging_jetstream")


def has_consumer(profile, subject: str) -> bool:
    bus = Nats(profile.ports["nats"])
    try:
        return "error" not in bus.jetstream(f"CONSUMER.INFO.{EVENTS}.{consumer_name(SUBSCRIBER, subject)}")
    finally:
        bus.close()


def test_links_put_while_a_provider_restarts_reach_it(running_lattice):
    profile = running_lattice
    names = []
    try:
        # Delays spread over the moment the restarted process starts and subscribes.
        for attempt, delay in enumerate((0.0, 0.05, 0.1, 0.2, 0.3, 0.5)):
            # Every host runs one: all are killed, so only a restarted one can make the consumer.
            pids = messaging_pids(profile)
            name = f"race-{attempt}"
            names.append(name)
            wash(profile, "config", "put", name, f"subscriptions=probe:{name}")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            time.sleep(delay)
            wash(profile, "link", "put", MESSAGING, SUBSCRIBER, "wasmcloud", "messaging", "--interface", "handler",
                 "--link-name", name, "--source-config", name)
            eventually(lambda: has_consumer(profile, f"probe:{name}"), timeout=20, interval=0.2,
                       what=f"consumer for link {name} (put {delay:.2f}s after the provider was killed)")
            # The process came back by itself, and the site answers.
            eventually(lambda: len(messaging_pids(profile)) == len(pids), timeout=20, what="every host's messaging provider back")
            assert not set(messaging_pids(profile)) & set(pids)
            assert Client(profile.http_url).get("/api/users/currentuser").status == 200
    finally:
        bus = Nats(profile.ports["nats"])
        try:
            for name in names:
                wash(profile, "link", "del", MESSAGING, "wasmcloud", "messaging", "--link-name", name, check=False)
                bus.jetstream(f"CONSUMER.DELETE.{EVENTS}.{consumer_name(SUBSCRIBER, f'probe:{name}')}")
        finally:
            bus.close()
