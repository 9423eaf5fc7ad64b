"""Load benchmark of a running ticketing deployment. Measures, and prints as markdown
tables (asserting nothing):

- per endpoint and concurrency: requests per second, p50 and p99 latency, responses that
  were not 2xx/3xx and socket errors (connect, read, write, timeout). The load comes from
  wrk (Debian package, installed on first use), one run per row: `-c` connections,
  `-t` 2 threads (1 for an odd number of connections, which wrk could not split evenly),
  `-d` the seconds per row, `--timeout 30s`. A small generated Lua script sets each
  request (the session cookie, JSON bodies, a fresh e-mail per sign-up) and prints wrk's
  summary as one JSON line, which is parsed here. req/s counts every response, errors
  included;
- the latency of an event: `POST /api/tickets` returning → the ticket orderable in
  orders (ticket:created through JetStream into the orders replica), 30 samples;
- the memory (RSS, with child processes) of each process of the local lattice.

The header gives the date, the 1-minute load average, the git revision of this checkout
and the server's `x-ticketing-build`, so a result can be quoted with its date and build.

    ./ticketing up && ./ticketing bench [--seconds 10] [--concurrency 8,32]
    ./ticketing bench --url https://tickets.example.org   # any deployment; no memory table
                                                          # unless the local lattice runs
    ./ticketing bench --url http://127.0.0.1:8000 --url http://127.0.0.1:8200
                    # side by side (here with the Node app of ../shared/bench/node-reference):
                    # each row runs against each target in turn

The page rows (`/`, `/tickets/:id`) load the server-rendered pages, which both this app
and the Node app's Next.js client serve at those addresses.

Before the rows, at least `--listed` tickets (200 unless asked) are for sale, created
through the API when fewer are listed; the list and landing rows fetch the first page, as
clients do. `--listed 100000` measures them on a large store (the first time, creating
the tickets takes several minutes; progress is shown). Sign-ups count towards the
per-address limit (`auth-limits` in wadm.yaml, 500 per 10 minutes): past it they are
429s and show in the non-2xx/3xx column. Each run adds users and tickets to the store.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .install import ensure_wrk
from .processes import running_names
from .settings import ROOT, Profile, git_revision

LISTED_TICKETS = 200  # tickets for sale before the rows, unless --listed says otherwise
PAGE_LIMIT = 100  # the API's largest page (common/src/paging.rs)
RESULT_MARK = "BENCH-RESULT "
SEED_CHUNK = 1000  # tickets created between two progress lines

# wrk calls done() once, in its main Lua state, after all threads stopped. Times are in
# microseconds; errors.status counts responses with a status above 399.
DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f}\n',
    MARK, summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""

# A fresh e-mail per request: a per-run token, the thread's number and random prefix, and
# a counter. setup() runs in the main state before each thread starts; thread:set puts
# `thread_no` into that thread's own Lua state, where init() and request() run.
UNIQUE_SIGNUP_LUA = r"""
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local prefix, counter = "", 0
init = function(args)
  math.randomseed(os.time() * 1000 + thread_no)
  prefix = string.format("%s-%d-%06x", RUN, thread_no, math.random(0, 0xffffff))
end

request = function()
  counter = counter + 1
  local body = string.format('{"email":"b-%s-%d@test.com","password":"password"}', prefix, counter)
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass
class Scenario:
    key: str  # what `--only` names it by
    name: str
    method: str
    path: str
    body: dict | None = None
    cookie: str | None = None
    unique_signup: bool = False  # the body is made per request, with a fresh e-mail


@dataclass
class Result:
    requests: int
    seconds: float
    status_errors: int
    socket_errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(text: str) -> str:
    """A Lua string literal of `text` (decimal escapes for anything but printable ASCII)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}"
                         for b in text.encode()) + '"'


def _script(scenario: Scenario, run_token: str) -> str:
    lines = [f"MARK = {_lua_string(RESULT_MARK)}", f"RUN = {_lua_string(run_token)}",
             f"wrk.method = {_lua_string(scenario.method)}"]
    if scenario.body is not None or scenario.unique_signup:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if scenario.body is not None:
        lines.append(f"wrk.body = {_lua_string(json.dumps(scenario.body))}")
    if scenario.cookie:
        lines.append(f'wrk.headers["Cookie"] = {_lua_string(scenario.cookie)}')
    if scenario.unique_signup:
        lines.append(UNIQUE_SIGNUP_LUA)
    lines.append(DONE_LUA)
    return "\n".join(lines) + "\n"


def run_wrk(base: str, scenario: Scenario, seconds: int, concurrency: int, workdir: Path, run_token: str) -> Result:
    script = workdir / f"{uuid.uuid4().hex[:8]}.lua"
    script.write_text(_script(scenario, run_token))
    # wrk gives each thread connections // threads; keep the total the level asked for.
    threads = 2 if concurrency >= 2 and concurrency % 2 == 0 else 1
    argv = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "30s",
            "-s", str(script), base + scenario.path]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 90)
    line = next((l for l in out.stdout.splitlines() if l.startswith(RESULT_MARK)), None)
    if line is None:
        raise SystemExit(f"wrk gave no result for {scenario.name} (exit {out.returncode}):\n"
                         f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
    s = json.loads(line[len(RESULT_MARK):])
    return Result(
        requests=s["requests"], seconds=s["duration_us"] / 1e6, status_errors=s["status"],
        socket_errors={k: s[k] for k in ("connect", "read", "write", "timeout")},
        p50_ms=s["p50_us"] / 1000, p99_ms=s["p99_us"] / 1000,
    )


def _request(url: str, method: str = "GET", body: dict | None = None,
             cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    if cookie:
        req.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers.items()), res.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def post_json(base: str, path: str, body: dict, cookie: str) -> dict:
    status, _, data = _request(base + path, "POST", body, cookie)
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        parsed = {}
    return {"status": status, **(parsed if isinstance(parsed, dict) else {})}


def session_cookie(base: str, email: str) -> str:
    """Signs up and in; returns the `session=...` cookie."""
    _request(base + "/api/users/signup", "POST", {"email": email, "password": "password"})
    status, headers, data = _request(base + "/api/users/signin", "POST", {"email": email, "password": "password"})
    cookie = {k.lower(): v for k, v in headers.items()}.get("set-cookie")
    if status != 200 or not cookie:
        raise SystemExit(f"could not sign in at {base} (HTTP {status}): {data[:200]!r}")
    return cookie.split(";")[0]


def _count_for_sale(base: str, enough: int) -> int:
    """Tickets listed by GET /api/tickets, counted page by page up to `enough`."""
    count, cursor = 0, None
    while count < enough:
        query = f"?limit={PAGE_LIMIT}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, headers, data = _request(base + "/api/tickets" + query)
        if status != 200:
            raise SystemExit(f"GET /api/tickets answered {status}")
        count += len(json.loads(data))
        cursor = {k.lower(): v for k, v in headers.items()}.get("x-next-cursor")
        if not cursor:
            break
    return count


def seed_tickets(base: str, cookie: str, wanted: int, settle=None) -> str:
    """Creates tickets until `wanted` are for sale (with progress); then, if it created any,
    calls `settle()`. Returns what it did, for the report."""
    listed = _count_for_sale(base, wanted)
    missing = max(0, wanted - listed)
    started, failed = time.time(), 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for done in range(0, missing, SEED_CHUNK):
            chunk = range(done, min(missing, done + SEED_CHUNK))
            answers = pool.map(lambda i: post_json(base, "/api/tickets", {"title": f"bench list {i}", "price": 10}, cookie), chunk)
            failed += sum(1 for a in answers if a["status"] != 201)
            if missing > SEED_CHUNK:
                rate = (done + len(chunk)) / (time.time() - started)
                print(f"  creating tickets for sale: {done + len(chunk)} of {missing} ({rate:.0f}/s, "
                      f"about {(missing - done - len(chunk)) / rate / 60:.0f} min left)", file=sys.stderr, flush=True)
    if failed:
        raise SystemExit(f"{failed} of {missing} ticket creations failed; is the lattice healthy? (./ticketing status)")
    if missing and settle:
        settle()
    return f"{listed} tickets were for sale, {missing} created" if missing else f"at least {listed} tickets for sale"


def settle(profile: Profile, limit_s: float = 600) -> None:
    """Waits (at most `limit_s`) until the local lattice is quiet again after creating
    tickets (seeding, or the create rows): the creations' events are relayed and consumed
    for a while after the last answer, and what is measured meanwhile measures that work
    too (an event's latency then includes the backlog ahead of it)."""
    from .profile import QUIET_LIMIT_S, lattice_processes, wait_quiet  # profile imports this module

    started = time.time()
    while time.time() - started < limit_s:
        if wait_quiet(lattice_processes(profile)) < QUIET_LIMIT_S:
            return
        print(f"  the lattice is still busy with the new tickets' events ({time.time() - started:.0f} s)",
              file=sys.stderr, flush=True)
    print(f"  still busy after {limit_s:.0f} s; measuring anyway", file=sys.stderr, flush=True)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def event_latency(base: str, cookie: str, samples: int = 30, limit_s: float = 30.0) -> list[float]:
    """Seconds from `POST /api/tickets` returning to the ticket being orderable in orders
    (ticket:created through JetStream into the orders replica)."""
    latencies = []
    for _ in range(samples):
        ticket = post_json(base, "/api/tickets", {"title": "bench", "price": 10}, cookie)
        if "id" not in ticket:
            raise SystemExit(f"POST /api/tickets answered {ticket['status']}")
        created = time.perf_counter()
        while post_json(base, "/api/orders", {"ticketId": ticket["id"]}, cookie)["status"] == 404:
            if time.perf_counter() - created > limit_s:
                raise SystemExit(f"ticket {ticket['id']} was not orderable after {limit_s:.0f} s")
            time.sleep(0.002)
        latencies.append(time.perf_counter() - created)
    return latencies


def _rss_mib(pid: int) -> float:
    total = 0
    # The process and its children (a host's providers run as its children).
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except FileNotFoundError:
        children = []
    return total / 1024 + sum(_rss_mib(int(c)) for c in children)


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split(" [")[0].strip() or "wrk"


def socket_errors_text(errors: dict[str, int]) -> str:
    total = sum(errors.values())
    return f"{total} ({', '.join(f'{k} {v}' for k, v in errors.items() if v)})" if total else "0"


@dataclass
class Target:
    """A deployment under load, signed in as a fresh user with one ticket of its own."""
    base: str
    build: str
    email: str
    cookie: str
    ticket_id: str
    seeded: str = ""


def prepare_target(base: str, run_token: str) -> Target:
    base = base.rstrip("/")
    try:
        _, headers, _ = _request(base + "/api/users/currentuser")
    except OSError as e:
        raise SystemExit(f"{base} does not answer: {e}")
    build = {k.lower(): v for k, v in headers.items()}.get("x-ticketing-build", "unknown")
    email = f"bench-{run_token}@test.com"
    cookie = session_cookie(base, email)
    ticket = post_json(base, "/api/tickets", {"title": "bench", "price": 10}, cookie)
    if "id" not in ticket:
        raise SystemExit(f"POST /api/tickets at {base} answered {ticket['status']}")
    return Target(base, build, email, cookie, ticket["id"])


def scenarios(target: Target, listed: int) -> list[Scenario]:
    """The rows, in order; the same paths fit the Node app, whose pages live at the same
    addresses (`/`, `/tickets/:id`)."""
    cookie, ticket = target.cookie, target.ticket_id
    return [
        Scenario("landing", "GET / (landing page: who is signed in, first page of tickets)", "GET", "/", cookie=cookie),
        Scenario("ticket-page", "GET /tickets/:id (ticket page: who is signed in, the ticket)", "GET", f"/tickets/{ticket}", cookie=cookie),
        Scenario("show", "GET /api/tickets/:id", "GET", f"/api/tickets/{ticket}"),
        Scenario("list", f"GET /api/tickets (first page, ≥{listed} for sale)", "GET", "/api/tickets"),
        Scenario("create", "POST /api/tickets (store + JetStream publish)", "POST", "/api/tickets",
                 body={"title": "bench", "price": 10}, cookie=cookie),
        Scenario("currentuser", "GET /api/users/currentuser", "GET", "/api/users/currentuser"),
        Scenario("signin", "POST /api/users/signin (argon2id)", "POST", "/api/users/signin",
                 body={"email": target.email, "password": "password"}),
        Scenario("signup", "POST /api/users/signup (argon2id + 3 keyvalue calls)", "POST", "/api/users/signup",
                 unique_signup=True),
    ]


SCENARIO_KEYS = ["landing", "ticket-page", "show", "list", "create", "currentuser", "signin", "signup"]


def bench(profile: Profile, bases: list[str], seconds: float, levels: list[int], memory: bool = True,
          listed: int = LISTED_TICKETS, only: list[str] | None = None) -> None:
    """Prints the tables for the deployments at `bases` (several: each row runs against
    each in turn, so that they share the machine's state), with at least `listed`
    tickets for sale, for the scenarios `only` names (default: all, see
    [`SCENARIO_KEYS`]); the memory table (of `profile`'s local processes) only when `memory`."""
    unknown = set(only or []) - set(SCENARIO_KEYS)
    if unknown:
        raise SystemExit(f"unknown scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIO_KEYS)}")
    ensure_wrk()
    row_seconds = max(1, round(seconds))
    run_token = uuid.uuid4().hex[:8]
    targets = [prepare_target(base, run_token) for base in bases]
    several = len(targets) > 1

    def is_local(t) -> bool:
        """Whether `t` is `profile`'s own lattice (whose processes this machine can watch)."""
        return memory and t.base == profile.http_url.rstrip("/")

    now = datetime.datetime.now().astimezone()
    print(f"\n## ticketing bench, {now:%Y-%m-%d %H:%M %Z}\n")
    for t in targets:
        store = f", {profile.store_label}" if is_local(t) else ""
        print(f"- target {t.base} (x-ticketing-build {t.build}{store})")
    print(f"- git {git_revision()} (this checkout); load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"- {wrk_version()}, {row_seconds} s per row, -t 2 (1 for odd conc), --timeout 30s"
          + (", targets in turn per row" if several else "") + "\n")
    print("| endpoint | " + ("target | " if several else "") + "conc | req/s | p50 ms | p99 ms | non-2xx/3xx | socket errors |")
    print("|---|" + ("---|" if several else "") + "---:|---:|---:|---:|---:|---|", flush=True)
    for t in targets:
        t.seeded = seed_tickets(t.base, t.cookie, listed, settle=(lambda: settle(profile)) if is_local(t) else None)
    rows = [[row for row in scenarios(t, listed) if not only or row.key in only] for t in targets]
    with tempfile.TemporaryDirectory(prefix="ticketing-bench-") as tmp:
        for i in range(len(rows[0])):
            for concurrency in levels:
                for t, scenario in zip(targets, (r[i] for r in rows)):
                    r = run_wrk(t.base, scenario, row_seconds, concurrency, Path(tmp), run_token)
                    print(f"| {scenario.name} | " + (f"{t.base} | " if several else "")
                          + f"{concurrency} | {r.rate:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                          f"{r.status_errors} | {socket_errors_text(r.socket_errors)} |", flush=True)
    print()
    for t in targets:
        print(f"Before the rows, {t.base}: {t.seeded}.")
    print(f"Load average (1 min) after the rows: {os.getloadavg()[0]:.2f}.")

    for t in targets:
        if is_local(t):
            settle(profile)
        latencies = event_latency(t.base, t.cookie)
        print(f"\n{t.base}: ticket:created → orderable in orders, {len(latencies)} samples: "
              f"p50 {_percentile(latencies, 50) * 1000:.1f} ms, p99 {_percentile(latencies, 99) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")

    if memory:
        rows = [(name, pid) for name in running_names(profile) if (pid := procs.running(profile, name))]
        print(f"\nMemory of the local {profile.name} lattice:\n")
        print("| process | RSS MiB (with children) |\n|---|---:|")
        for name, pid in rows:
            print(f"| {name} | {_rss_mib(pid):.1f} |")
