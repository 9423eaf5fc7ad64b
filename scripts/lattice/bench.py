"""Load benchmark of a running lattice: throughput and latency per endpoint, and the
memory of the lattice's processes. Prints tables; asserts nothing.

    ./ticketing up && ./ticketing bench [--seconds 10] [--concurrency 1,8,32]
"""
from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

from . import procs
from .processes import process_names
from .settings import Profile


def _request(url: str, method: str = "GET", body: dict | None = None, cookie: str | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    if cookie:
        req.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            res.read()
            return res.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def _run(seconds: float, concurrency: int, call) -> tuple[int, int, list[float]]:
    """Runs `call` from `concurrency` threads for `seconds`; returns (ok, errors, latencies)."""
    deadline = time.time() + seconds
    latencies: list[float] = []
    counts = {"ok": 0, "err": 0}
    lock = threading.Lock()

    def worker():
        while time.time() < deadline:
            started = time.perf_counter()
            try:
                ok = call() < 500
            except OSError:
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                counts["ok" if ok else "err"] += 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    return counts["ok"], counts["err"], latencies


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


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


def _session(base: str, email: str) -> str:
    """Signs in and returns the `session=...` cookie."""
    req = urllib.request.Request(base + "/api/users/signin", data=json.dumps({"email": email, "password": "password"}).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.headers["set-cookie"].split(";")[0]


def _post_json(base: str, path: str, body: dict, cookie: str) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "cookie": cookie})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return {"status": res.status, **json.loads(res.read() or b"{}")}
    except urllib.error.HTTPError as e:
        return {"status": e.code}


def event_latency(base: str, cookie: str, samples: int = 30) -> list[float]:
    """Seconds from `POST /api/tickets` returning to the ticket being orderable in orders
    (ticket:created through JetStream into the orders replica)."""
    latencies = []
    for _ in range(samples):
        ticket = _post_json(base, "/api/tickets", {"title": "bench", "price": 10}, cookie)
        created = time.perf_counter()
        while _post_json(base, "/api/orders", {"ticketId": ticket["id"]}, cookie)["status"] == 404:
            time.sleep(0.002)
        latencies.append(time.perf_counter() - created)
    return latencies


def bench(profile: Profile, seconds: float, levels: list[int]) -> None:
    base = profile.http_url
    email = f"bench-{uuid.uuid4().hex[:8]}@test.com"
    _request(base + "/api/users/signup", "POST", {"email": email, "password": "password"})
    cookie = _session(base, email)
    ticket = _post_json(base, "/api/tickets", {"title": "bench", "price": 10}, cookie)
    endpoints = {
        "GET / (web page: 2 API calls through the lattice)": lambda: _request(base + "/", cookie=cookie),
        "GET /api/tickets/:id": lambda: _request(base + f"/api/tickets/{ticket['id']}"),
        "POST /api/tickets (store + JetStream publish)": lambda: _request(
            base + "/api/tickets", "POST", {"title": "bench", "price": 10}, cookie=cookie),
        "GET /api/users/currentuser": lambda: _request(base + "/api/users/currentuser"),
        "POST /api/users/signin (argon2id)": lambda: _request(base + "/api/users/signin", "POST",
                                                              {"email": email, "password": "password"}),
        "POST /api/users/signup (argon2id + 3 keyvalue calls)": lambda: _request(
            base + "/api/users/signup", "POST", {"email": f"b-{uuid.uuid4().hex}@test.com", "password": "password"}),
    }
    print(f"\n{seconds:.0f} s per row against {base}\n")
    print(f"{'endpoint':<54} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for name, call in endpoints.items():
        for concurrency in levels:
            ok, err, latencies = _run(seconds, concurrency, call)
            print(f"{name:<54} {concurrency:>4} {ok / seconds:>8.1f} {_percentile(latencies, 50) * 1000:>8.1f} "
                  f"{_percentile(latencies, 99) * 1000:>8.1f} {err:>6}")
    latencies = event_latency(base, cookie)
    print(f"\nticket:created → orderable in orders, {len(latencies)} samples: "
          f"p50 {_percentile(latencies, 50) * 1000:.1f} ms, p99 {_percentile(latencies, 99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    print(f"\n{'process':<14} {'RSS MiB (with children)':>24}")
    for name in process_names(profile):
        pid = procs.running(profile, name)
        if pid:
            print(f"{name:<14} {_rss_mib(pid):>24.1f}")
