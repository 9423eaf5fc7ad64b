"""Event operations as an operator sees them: `./ticketing events` shows each consumer's
lag and every dead letter with its reason, and `events replay` puts one back on the bus."""
from __future__ import annotations

import base64
import json
import subprocess
import sys

from helpers import eventually, new_id, nats
from lattice import events
from lattice.settings import ROOT
from lattice.washcli import wash_json


def ticketing(profile, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "ticketing"), *args, "--profile", profile.name],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_a_dead_letter_is_shown_with_its_reason_and_can_be_replayed(running_lattice):
    profile = running_lattice
    # An update of a ticket orders never heard of can never be applied: dead-lettered
    # after max_deliver attempts (about 35 s with the manifest's backoff).
    ticket_id = new_id()
    event = {"id": ticket_id, "version": 3, "title": "never created", "price": 5, "userId": new_id()}
    bus = nats(profile)
    try:
        bus.publish_event("ticket:updated", event)
        letter = eventually(lambda: next((d for d in events.dead_letters(bus) if ticket_id.encode() in d.payload), None),
                            timeout=90, interval=1, what="the event to be dead-lettered")
    finally:
        bus.close()
    consumer = events.consumer_name("ticketing-orders", "ticket:updated")
    assert letter.consumer == consumer
    assert letter.subject == "ticket:updated"
    assert ticket_id in letter.failure, letter.failure

    shown = ticketing(profile, "events")
    assert consumer in shown
    assert f"#{letter.seq} " in shown and letter.failure in shown

    ticketing(profile, "events", "replay", str(letter.seq))
    bus = nats(profile)
    try:
        last = json.loads(bus.request(f"$JS.API.STREAM.MSG.GET.{events.EVENTS}",
                                      json.dumps({"last_by_subj": "events.ticket:updated"}).encode()))
    finally:
        bus.close()
    assert json.loads(base64.b64decode(last["message"]["data"])) == event


def test_the_nats_cli_shows_the_streams_and_who_serves_the_store(running_lattice):
    """natscli, installed with the other tools, reads the lattice's streams, consumers and
    the keyvalue provider's serving lease (README, "Event operations")."""
    from lattice.settings import TOOLS_BIN

    def nats_cli(*args: str) -> str:
        done = subprocess.run([str(TOOLS_BIN / "nats"), "-s", f"nats://127.0.0.1:{running_lattice.ports['nats']}", *args],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    streams = nats_cli("stream", "ls", "--names")
    assert events.EVENTS in streams, streams
    consumers = nats_cli("consumer", "ls", events.EVENTS, "--names")
    assert events.consumer_name("ticketing-orders", "ticket:created") in consumers, consumers
    holder = nats_cli("kv", "get", "ticketing_leases", f"{running_lattice.lattice}.ticketing-keyvalue_mongo", "--raw")
    serving_host = holder.split("/")[0]
    assert serving_host in {h["id"] for h in wash_json(running_lattice, "get", "hosts")["hosts"]}, holder
