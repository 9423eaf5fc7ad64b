"""Fault drill: faults injected while purchases run, and what each one cost.

`./ticketing drill` (with `up` running) runs, for each fault in turn, a batch of whole
purchases (a buyer signs up, a seller lists a ticket, the buyer orders it and pays, then
signs in again) and, a moment after they start, injects the fault: a provider process killed, NATS, FerretDB or Redis restarted,
each host killed with its providers. Clients behave as real ones do: a request that fails with a 5xx or a
broken connection is tried again (with an `Idempotency-Key`, so a retried POST is not
a second ticket or order where the services honour it). Afterwards it prints, per
fault, how long reads and writes of the API failed and how many purchases were lost (never
completed) or duplicated (more than one ticket or order for one purchase).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from . import procs, sessions
from .health import wait_until_every_host_runs_everything
from .processes import host_names, provider_pids, start
from .procs import log
from .settings import Profile

RETRY_FOR = 90.0  # seconds a client keeps trying one step


class Client:
    """One user's HTTP client: a session cookie minted with the lattice's key, or got by
    signing up or in."""

    def __init__(self, base: str, session: str):
        self.base = base
        self.session = session

    @classmethod
    def signed_up(cls, base: str, email: str, password: str) -> tuple["Client | None", str]:
        """Signs up as a real client would: again after a 5xx or a broken connection, and
        by signing in when a retried sign-up finds the e-mail taken (the first try went
        through). When neither works, the first try died between claiming the address and
        storing its user: the claim is given up after a while (`ABANDONED_AFTER_MS` in
        auth), so it tries again until then. Returns the client, or None and what went wrong."""
        deadline = time.time() + RETRY_FOR
        status = 0
        half_done = False
        while time.time() < deadline:
            status, session = cls.session_from(base, "/api/users/signup", email, password)
            if status == 400 and half_done:
                time.sleep(2)  # only sign-up again: failed sign-ins would lock the address out
                continue
            if status == 400:
                status, session = cls.session_from(base, "/api/users/signin", email, password)
                if status == 400:  # taken, but no such account: a half-done first try
                    half_done = True
                    continue
            if session:
                return cls(base, session), ""
            if 400 <= status < 500 and status != 429:
                break
            time.sleep(0.3)
        return None, f"sign-up answered {status}"

    @staticmethod
    def session_from(base: str, path: str, email: str, password: str) -> tuple[int, str | None]:
        """Status of a sign-up or sign-in, and the session cookie it set."""
        data = json.dumps({"email": email, "password": password}).encode()
        request = urllib.request.Request(base + path, data=data, method="POST", headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=25) as reply:
                for cookie in reply.headers.get_all("set-cookie") or []:
                    name, _, rest = cookie.partition("=")
                    if name.strip() == "session":
                        return reply.status, rest.split(";", 1)[0]
                return reply.status, None
        except urllib.error.HTTPError as e:
            return e.code, None
        except OSError:
            return 0, None

    def call(self, method: str, path: str, body: dict | None = None, key: str | None = None,
             timeout: float = 25) -> tuple[int, object]:
        headers = {"cookie": f"session={self.session}", "content-type": "application/json"}
        if key:
            headers["idempotency-key"] = key
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except json.JSONDecodeError:
                return e.code, None
        except (OSError, json.JSONDecodeError):
            return 0, None

    @staticmethod
    def why(status: int, reply: object) -> str:
        """`<status>`, with the API's first error message when there is one."""
        try:
            return f"{status} {reply['errors'][0]['message']!r}"  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            return str(status)

    def until(self, method: str, path: str, body: dict | None = None, done=lambda s: 200 <= s < 300,
              key: str | None = None) -> tuple[int, object]:
        """Calls again after a 5xx, a broken connection, a 404 of a replica not there yet
        or a 409 of a first try still under way."""
        deadline = time.time() + RETRY_FOR
        while True:
            status, reply = self.call(method, path, body, key)
            if done(status) or time.time() > deadline or (400 <= status < 500 and status not in (404, 409)):
                return status, reply
            time.sleep(0.3)


PHASES = ("signing up", "listing", "ordering", "paying", "confirming")


@dataclass
class Purchase:
    """One purchase: how far it got, and its outcome."""

    title: str
    phase: str = PHASES[0]
    ticket_id: str | None = None
    order_id: str | None = None
    completed: bool = False
    failure: str = ""

    def reached(self, phase: str) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(phase)


def purchase(profile: Profile, result: Purchase) -> Purchase:
    title = result.title
    email, password = f"{uuid.uuid4().hex[:12]}@drill.test", "drill-password"
    buyer, failure = Client.signed_up(profile.http_url, email, password)
    if buyer is None:
        result.failure = failure
        return result
    seller = Client(profile.http_url, sessions.mint(profile))
    result.phase = "listing"
    status, ticket = seller.until("POST", "/api/tickets", {"title": title, "price": 10}, key=str(uuid.uuid4()))
    if status != 201:
        result.failure = f"listing answered {Client.why(status, ticket)}"
        return result
    result.ticket_id = ticket["id"]
    order_key = str(uuid.uuid4())
    result.phase = "ordering"
    status, order = buyer.until("POST", "/api/orders", {"ticketId": ticket["id"]}, key=order_key)
    if status != 201:
        result.failure = f"ordering answered {Client.why(status, order)}"
        return result
    result.order_id = order["id"]
    result.phase = "paying"
    status, paid = buyer.until("POST", "/api/payments", {"orderId": order["id"], "token": "tok_visa"},
                            key=str(uuid.uuid4()))
    if status != 201:
        result.failure = f"paying answered {Client.why(status, paid)}"
        return result
    result.phase = "confirming"
    deadline = time.time() + RETRY_FOR
    while time.time() < deadline:
        status, shown = buyer.call("GET", f"/api/orders/{order['id']}")
        if status == 200 and shown.get("status") == "complete":
            break
        time.sleep(0.3)
    else:
        result.failure = "paid order never became complete"
        return result
    # An e-mail claimed without its user would refuse this ("Invalid credentials"); a
    # 5xx or a broken connection is tried again, as for every step.
    deadline = time.time() + RETRY_FOR
    while True:
        status, _ = Client.session_from(profile.http_url, "/api/users/signin", email, password)
        if status == 200 or (400 <= status < 500 and status != 429) or time.time() > deadline:
            break
        time.sleep(0.3)
    if status != 200:
        result.failure = f"signing in again answered {status}"
        return result
    result.completed = True
    return result


@dataclass
class Outcome:
    fault: str
    purchases: list[Purchase] = field(default_factory=list)
    #: Longest stretches (s) in which reads (`GET /api/tickets`) and writes (editing a
    #: ticket, see `probes`) failed.
    reads_unavailable_s: float = 0.0
    writes_unavailable_s: float = 0.0
    duplicated: int = 0
    #: Tickets still for sale a while after their order completed (tickets never heard).
    unreserved: int = 0


PROBE_TIMEOUT = 2.0  # a probe not answered by then counts as failed


def watch_availability(probe, stop: threading.Event) -> float:
    """Longest stretch (s) in which `probe()` failed, probed every 100 ms: from the moment
    the first failing probe was sent to the moment the next good one was."""
    worst, down_since = 0.0, None
    while not stop.is_set():
        sent = time.time()
        if probe():
            if down_since is not None:
                worst = max(worst, sent - down_since)
                down_since = None
        elif down_since is None:
            down_since = sent
        time.sleep(0.1)
    if down_since is not None:
        worst = max(worst, time.time() - down_since)
    return worst


def probes(profile: Profile) -> dict:
    """A read and a write of the API, each True when it succeeded.

    The write edits a ticket of its own again and again (a stored change and its event,
    like any write) rather than listing a new one every 100 ms, which filled the store
    with thousands of tickets. An edit cut off by the fault leaves that ticket's next
    version claimed, and edits of it answer 409 until the claim is taken over
    (`ABANDONED_VERSION_MS`, 40 s): a correct answer of a working API, so the probe counts
    it as one. After any failed edit it goes on with a new ticket."""
    reader = Client(profile.http_url, "")
    writer = Client(profile.http_url, sessions.mint(profile))
    edits = iter(range(1, 1_000_000))
    ticket: dict = {}

    def read() -> bool:
        return reader.call("GET", "/api/tickets?limit=1", timeout=PROBE_TIMEOUT)[0] == 200

    def write() -> bool:
        if not ticket:
            status, listed = writer.call("POST", "/api/tickets", {"title": "availability probe", "price": 1},
                                         timeout=PROBE_TIMEOUT)
            if status != 201:
                return False
            ticket.update(listed)
        body = {"title": "availability probe", "price": next(edits)}
        status, _ = writer.call("PUT", f"/api/tickets/{ticket['id']}", body, timeout=PROBE_TIMEOUT)
        if status != 200:
            ticket.clear()  # whatever became of that edit, go on with a new ticket
        return status in (200, 409)

    return {"reads": read, "writes": write}


def kill_provider(profile: Profile) -> None:
    for pid in provider_pids(profile, "keyvalue_mongo"):
        os.kill(pid, signal.SIGKILL)


def restart(name: str):
    def inject(profile: Profile) -> None:
        procs.stop(profile, name, timeout=5)
        start(profile, name)
    return inject


def kill_host(name: str):
    def inject(profile: Profile) -> None:
        pid = procs.running(profile, name)
        if pid:
            procs.kill_group(pid)  # the host and its providers; the supervisor starts it again
    return inject


FAULTS = [
    ("keyvalue provider killed", kill_provider),
    ("NATS restarted", restart("nats")),
    ("FerretDB restarted", restart("ferretdb")),
    ("Redis restarted", restart("redis")),
]


def scenarios(profile: Profile) -> list[tuple[str, object, str | None]]:
    """Each fault, timed to hit the steps that store something: servers restarted while
    buyers sign up, order and pay; the provider killed while orders are placed; each
    host killed (with its providers) while orders are placed."""
    return [
        *((name, inject, phase) for name, inject in FAULTS[1:4] for phase in ("signing up", "ordering", "paying")),
        (FAULTS[0][0], FAULTS[0][1], "ordering"),
        *((f"{host} killed", kill_host(host), "ordering") for host in host_names(profile)),
    ]


def run_fault(profile: Profile, name: str, inject, count: int, at_phase: str | None = None) -> Outcome:
    """Runs `count` purchases and injects the fault once a quarter of them reached
    `at_phase` (half a second after they start when None)."""
    outcome = Outcome(name if at_phase is None else f"{name} while {at_phase}")
    # From a lattice at full strength: a host restarted by the fault before gets its
    # components some 20-30 s after it is back.
    wait_until_every_host_runs_everything(profile)
    tag = uuid.uuid4().hex[:6]
    stop = threading.Event()
    unavailable: dict[str, float] = {}
    watchers = [threading.Thread(target=lambda kind=kind, probe=probe: unavailable.__setitem__(kind, watch_availability(probe, stop)))
                for kind, probe in probes(profile).items()]
    for w in watchers:
        w.start()
    results = [Purchase(f"drill {tag} {i}") for i in range(count)]
    workers = [threading.Thread(target=purchase, args=(profile, p)) for p in results]
    for w in workers:
        w.start()
    if at_phase is None:
        time.sleep(0.5)
    else:
        deadline = time.time() + RETRY_FOR
        while sum(p.reached(at_phase) for p in results) < max(1, count // 4) and time.time() < deadline:
            time.sleep(0.02)
    in_phase = sum(p.phase == (at_phase or PHASES[0]) for p in results)
    log(f"{outcome.fault}: injecting the fault ({in_phase} of {count} purchases {at_phase or PHASES[0]})")
    inject(profile)
    for w in workers:
        w.join()
    stop.set()
    for w in watchers:
        w.join()
    outcome.purchases = results
    outcome.reads_unavailable_s = unavailable.get("reads", 0.0)
    outcome.writes_unavailable_s = unavailable.get("writes", 0.0)
    # Duplicates: tickets for sale under a purchase's title other than its own ticket (a
    # retried listing that made a second one).
    client = Client(profile.http_url, sessions.mint(profile))
    listed = [t for t in client.call("GET", "/api/tickets?limit=100")[1] or [] if isinstance(t, dict)]
    outcome.duplicated = sum(1 for p in results for t in listed if t.get("title") == p.title and t.get("id") != p.ticket_id)
    # A completed purchase's ticket is reserved once tickets applied `order:created`; give
    # the events time (a change held up by a half-done claim waits for it to expire).
    deadline = time.time() + RETRY_FOR
    waiting = [p for p in results if p.completed]
    while waiting and time.time() < deadline:
        waiting = [p for p in waiting if (client.call("GET", f"/api/tickets/{p.ticket_id}")[1] or {}).get("orderId") is None]
        time.sleep(1 if waiting else 0)
    outcome.unreserved = len(waiting)
    return outcome


def drill(profile: Profile, count: int) -> list[Outcome]:
    outcomes = []
    for name, inject, phase in scenarios(profile):
        outcomes.append(run_fault(profile, name, inject, count, phase))
        time.sleep(3)  # let the lattice settle before the next fault
    print_table(outcomes, count)
    return outcomes


def print_table(outcomes: list[Outcome], count: int) -> None:
    print(f"\nFault drill: {count} purchases per fault ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"load {os.getloadavg()[0]:.2f})\n")
    print("| fault | reads unavailable (s) | writes unavailable (s) | completed | lost | duplicated | still for sale | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        completed = sum(p.completed for p in o.purchases)
        failures = sorted({p.failure for p in o.purchases if p.failure})
        print(f"| {o.fault} | {o.reads_unavailable_s:.1f} | {o.writes_unavailable_s:.1f} | {completed}/{len(o.purchases)} | "
              f"{len(o.purchases) - completed} | {o.duplicated} | {o.unreserved} | {'; '.join(failures) or '-'} |")
