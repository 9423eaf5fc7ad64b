"""Health checks and link repair: waiting for the hosts, wadm and the HTTP API to answer,
and checking that the HTTP servers have every route and the messaging provider every durable
consumer, re-sending a provider's links when one is missing."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

from . import procs
from .events import EVENTS, consumer_name
from .nats import Nats
from .processes import host_names
from .procs import log
from .settings import Profile
from .washcli import wash, wash_json


def wait_for_hosts(profile: Profile, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = wash_json(profile, "get", "hosts")
        if out and len(out.get("hosts", [])) >= profile.hosts:
            return
        for name in host_names(profile):
            if not procs.running(profile, name):
                raise SystemExit(f"{name} exited; last lines of its log:\n{procs.log_tail(profile, name)}")
        time.sleep(0.5)
    raise SystemExit(f"the hosts did not join lattice {profile.lattice!r} within {timeout:.0f}s")


def wait_until_every_host_runs_everything(profile: Profile, timeout: float = 180) -> None:
    """Until each host runs every component the manifest has (the components wadm puts
    on a restarted host come some 20-30 s after the host): a lattice back at full
    strength, as a fault drill needs before it takes the next host away."""
    wanted = {"auth", "tickets", "orders", "payments", "web", "expiration"}
    deadline = time.time() + timeout
    while time.time() < deadline:
        hosts = (wash_json(profile, "get", "inventory") or {}).get("inventories", [])
        if len(hosts) >= profile.hosts and all(wanted <= {c.get("name") for c in h["components"]} for h in hosts):
            return
        time.sleep(1)
    raise SystemExit(f"not every host of lattice {profile.lattice!r} ran every component within {timeout:.0f}s")


def wait_for_wadm(profile: Profile, timeout: float = 60) -> None:
    """Waits until wadm answers (`wash app list`), so that what it holds can be read."""
    deadline = time.time() + timeout
    while wash_json(profile, "app", "list") is None:
        if not procs.running(profile, "wadm"):
            raise SystemExit(f"wadm exited; last lines of its log:\n{procs.log_tail(profile, 'wadm')}")
        if time.time() > deadline:
            raise SystemExit(f"wadm did not answer within {timeout:.0f}s; log: {profile.log_dir / 'wadm.log'}")
        time.sleep(0.5)


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for_http(profile: Profile, timeout: float = 120) -> None:
    """Waits until the API's health path answers 200."""
    url = profile.http_url + profile.health_path
    deadline = time.time() + timeout
    while True:
        try:
            status, _ = http_get(url)
            if status == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s; logs: {profile.log_dir}")
        time.sleep(0.5)


# What each route answers once its link reached the hosts' HTTP servers (an unrouted /api
# path would fall through to the web component's JSON 404).
HTTP_SERVER_ID = "ticketing-http_server"
MESSAGING_ID = "ticketing-messaging_jetstream"
ROUTE_CHECKS = [("/", 200), ("/api/users/currentuser", 200), ("/api/tickets", 200), ("/api/orders", 401),
                ("/api/payments/orders/000000000000000000000000", 401)]


def _routes_ok(profile: Profile) -> list[str]:
    wrong = []
    for path, expected in ROUTE_CHECKS:
        try:
            status, _ = http_get(profile.http_url + path)
        except OSError:
            status = 0
        if status != expected:
            wrong.append(f"{path} answered {status}, not {expected}")
    return wrong


def _consumers_missing(profile: Profile) -> list[str]:
    """Durable consumers the messaging provider should have made for its links, and has not."""
    links = (wash_json(profile, "get", "links") or {}).get("links", [])
    missing = []
    bus = Nats(profile.ports["nats"], profile.address)
    try:
        for link in links:
            if link.get("source_id") != MESSAGING_ID:
                continue
            for config in link.get("source_config", []):
                subjects = (wash_json(profile, "config", "get", config) or {}).get("subscriptions", "")
                for subject in filter(None, (s.strip() for s in subjects.split(","))):
                    name = consumer_name(link["target"], subject)
                    if "error" in bus.jetstream(f"CONSUMER.INFO.{EVENTS}.{name}"):
                        missing.append(name)
    finally:
        bus.close()
    return missing


def resend_links(profile: Profile, provider_id: str) -> None:
    """Deletes and puts again every link from `provider_id` (the same link put again is
    not sent on; deleted and put, it is)."""
    for link in (wash_json(profile, "get", "links") or {}).get("links", []):
        if link.get("source_id") != provider_id:
            continue
        args = ["link", "put", provider_id, link["target"], link["wit_namespace"], link["wit_package"],
                "--link-name", link["name"]]
        args += [a for i in link.get("interfaces", []) for a in ("--interface", i)]
        args += [a for c in link.get("source_config", []) for a in ("--source-config", c)]
        args += [a for c in link.get("target_config", []) for a in ("--target-config", c)]
        wash(profile, "link", "del", provider_id, link["wit_namespace"], link["wit_package"],
             "--link-name", link["name"], check=False)
        wash(profile, *args, check=False)


def ensure_links(profile: Profile, timeout: float = 20) -> None:
    """Checks that the HTTP servers have every route and the messaging provider every consumer;
    re-sends a provider's links if not.

    A link put while a provider process is starting (after the host captured the links it
    hands the provider, before the provider subscribed to link updates) never reaches it:
    a race in wasmCloud 1.x's provider start. wadm sees the link stored and does not put
    it again, so it stays missing."""
    for what, provider_id, check in (("route", HTTP_SERVER_ID, _routes_ok), ("event consumer", MESSAGING_ID, _consumers_missing)):
        deadline = time.time() + timeout
        while (wrong := check(profile)) and time.time() < deadline:
            time.sleep(0.5)
        if not wrong:
            continue
        log(f"{provider_id} missed a link ({what}: {'; '.join(wrong)}): sending its links again")
        resend_links(profile, provider_id)
        deadline = time.time() + 30
        while (wrong := check(profile)) and time.time() < deadline:
            time.sleep(0.5)
        if wrong:
            raise SystemExit(f"{what} still missing after sending {provider_id}'s links again: "
                             f"{'; '.join(wrong)}; logs: {profile.log_dir}")

