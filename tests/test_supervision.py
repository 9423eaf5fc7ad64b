"""The lattice's processes are kept alive: a crashed NATS or host is started again by the
supervisor that `up` runs, the host under its old identity, and the site serves again."""
from __future__ import annotations

import os
import signal
import time

from client import Client
from helpers import create_ticket, eventually, user
from lattice import procs
from lattice.health import ROUTE_CHECKS
from lattice.processes import host_names
from lattice.washcli import wash_json


def serves(profile) -> bool:
    try:
        return all(Client(profile.http_url).get(path, timeout=2).status == status
                   for path, status in ROUTE_CHECKS)
    except OSError:
        return False


def host_ids(profile) -> set[str]:
    return {h["id"] for h in (wash_json(profile, "get", "hosts") or {}).get("hosts", [])}


def kill(profile, name: str) -> int:
    pid = procs.running(profile, name)
    assert pid, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def test_the_supervisor_runs_with_the_lattice(running_lattice):
    assert procs.running(running_lattice, "supervisor")


def test_a_killed_nats_server_is_started_again_and_the_site_serves(running_lattice):
    profile = running_lattice
    old = kill(profile, "nats")
    eventually(lambda: procs.running(profile, "nats") not in (None, old), timeout=30, what="NATS to be restarted")
    eventually(lambda: serves(profile), timeout=60, interval=0.5, what="the site to serve after NATS came back")
    seller = user(profile)
    assert create_ticket(seller, title="after nats restart")["title"] == "after nats restart"


def test_a_killed_host_comes_back_under_its_identity_and_the_site_serves(running_lattice):
    profile = running_lattice
    before = host_ids(profile)
    for name in host_names(profile):
        old = kill(profile, name)
        eventually(lambda: procs.running(profile, name) not in (None, old), timeout=30,
                   what=f"{name} to be restarted")
        eventually(lambda: host_ids(profile) == before, timeout=60, interval=0.5, what=f"{name} to rejoin")
        eventually(lambda: serves(profile), timeout=90, interval=0.5, what=f"the site to serve after {name} came back")
        time.sleep(1)
    restarts = procs.log_tail(profile, "supervisor", 50)
    assert all(f"{name} (pid" in restarts for name in host_names(profile)), restarts
