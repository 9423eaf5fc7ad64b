"""Where the CPU of a request goes, on the running local lattice. Measures, and prints as
markdown tables (asserting nothing):

- per scenario, the CPU time (user + system, from /proc/<pid>/stat) that each process of
  the lattice spent, divided by the requests wrk completed: the servers (nats, ferretdb,
  redis, stripe-mock), each wasmCloud host, each host's provider processes (its
  children, named after their archive, e.g. keyvalue-mongo), wadm, and wrk itself (the
  load generator, from this process's child rusage). Shares are of the total, wrk
  included; processes at ~0 are left out. "busy cores" is that total over the wall time;
- with `--perf`, a sampling profile of the host(s) during the same run (`perf record
  -F 499 -g -p <host pids>`; self time, no children): by shared object, by Rust crate of
  the symbol, and the 25 top symbols. Wasm code compiled by wasmtime appears as
  `[JIT] tid <pid>`, without names (the host writes no perf map); `[kernel.kallsyms]`
  is the kernel (syscalls, TCP over loopback, page faults and TLB flushes of instance
  memory); the host binary's crates (wasmtime, tokio, hyper, async_nats, serde, ...) are
  told apart by their symbols. In a debug build little is inlined, so much time sits in
  `core`/`alloc` (Arc, Option, comparisons) on behalf of every crate.

Scenarios (wrk, `-c` connections, the load of bench.py's rows):

    currentuser  GET /api/users/currentuser (no cookie, as in bench)
    create       POST /api/tickets {"title":"profile","price":10} with a session cookie
    list         GET /api/tickets, the first page (at least 200 tickets for sale, as in bench)
    show         GET /api/tickets/:id

    ./ticketing profile [--seconds 10] [--concurrency 8] [--perf] [scenario ...]

Reading it: CPU ms per request is the cost of one request across the whole system,
including the asynchronous work it causes (a created ticket's event through JetStream
into orders, the outbox sweep that follows writes): before each scenario the lattice
is let quiet down (below 10 % of a core for a second; at most 10 s), and after wrk
stops its CPU is counted until it is quiet again (the same rule). The idle lattice
uses ~15 ms of CPU a second (heartbeats, polling), which is counted too.
Numbers only mean something on a quiet machine: other load (a test run, a build)
competes for the same cores, and the numbers of a debug build are not those of a
release one (the header says which binary the host runs). CPU time is counted in clock
ticks (10 ms), so short runs with few requests are coarse. Each run adds a user and,
with `create` (and `list` on a near-empty store), tickets to the store.
"""
from __future__ import annotations

import collections
import datetime
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .bench import (LISTED_TICKETS, Result, Scenario, git_revision, post_json, session_cookie, seed_tickets,
                    socket_errors_text, run_wrk, wrk_version)
from .install import ensure_wrk
from .processes import host_names, running_names
from .settings import Profile

SCENARIOS = ["currentuser", "create", "list", "show"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_CORES = 0.1  # the lattice counts as quiet below this share of one core
QUIET_FOR_S = 1.0  # ... over this long (the outbox sweep runs a second or two after writes)
QUIET_STEP_S = 0.25
QUIET_LIMIT_S = 10.0
OMIT_SHARE = 0.001  # rows below 0.1 % of the total are left out
PERF = "/usr/bin/perf"
PERF_HZ = 499
TOP_SYMBOLS = 25


# --- CPU time of the lattice's processes ------------------------------------------------

def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of process `pid` (all its threads), in clock ticks; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            found += [int(c) for c in open(f"/proc/{pid}/task/{tid}/children").read().split()]
        except FileNotFoundError:
            pass
    return found


def _provider_name(pid: int) -> str:
    """A provider process's name from its cmdline's basename, e.g.
    `127_0_0_1_5001_ticketing_keyvalue_mongo_92abb8754d25` → keyvalue-mongo."""
    try:
        argv0 = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode(errors="replace")
    except FileNotFoundError:
        argv0 = ""
    base = os.path.basename(argv0)
    if not base:
        try:
            return open(f"/proc/{pid}/comm").read().strip()
        except FileNotFoundError:
            return f"pid {pid}"
    pulled = re.search(r"_ticketing_([a-z_]+)_[0-9a-f]{12}$", base)
    if pulled:  # pulled from the registry: <registry>_ticketing_<name>_<tag>
        return pulled.group(1).replace("_", "-")
    stem = re.sub(r"(_[0-9a-f]{8,})?_par(_gz)?$", "", base)
    if stem != base:  # a provider archive loaded from a file: <where>_<name>_<hash>_par_gz
        return stem.rsplit("_artifacts_", 1)[-1].rsplit("_build_", 1)[-1].replace("_", "-")
    return base


def lattice_processes(profile: Profile) -> dict[int, str]:
    """pid → label of every running process of the lattice, a host's children listed on
    their own (labelled with their host when the profile runs several)."""
    found: dict[int, str] = {}
    several_hosts = len(host_names(profile)) > 1

    hosts = set(host_names(profile))

    def add_children(pid: int, owner: str) -> None:
        for child in _children(pid):
            if owner in hosts:
                name = _provider_name(child)
                found[child] = f"{name} ({owner})" if several_hosts else name
            else:  # a server's own workers, e.g. PostgreSQL's backends
                found[child] = owner
            add_children(child, owner)

    for name in running_names(profile):
        pid = procs.running(profile, name)
        if pid:
            found[pid] = name
            add_children(pid, name)
    return found


def _snapshot(pids: dict[int, str]) -> dict[int, int]:
    return {pid: t for pid in pids if (t := _cpu_ticks(pid)) is not None}


def wait_quiet(pids: dict[int, str]) -> float:
    """Waits (at most QUIET_LIMIT_S) until the processes have used less than QUIET_CORES of
    a core over the last QUIET_FOR_S; returns the seconds waited."""
    started = time.perf_counter()
    window = collections.deque([_snapshot(pids)], maxlen=round(QUIET_FOR_S / QUIET_STEP_S) + 1)
    while time.perf_counter() - started < QUIET_LIMIT_S:
        time.sleep(QUIET_STEP_S)
        window.append(_snapshot(pids))
        if len(window) == window.maxlen:
            first, last = window[0], window[-1]
            used_s = sum(last[p] - first[p] for p in last if p in first) / CLK_TCK
            if used_s < QUIET_CORES * QUIET_FOR_S:
                break
    return time.perf_counter() - started


def _quiet(waited_s: float) -> str:
    if waited_s >= QUIET_LIMIT_S:
        return f"the lattice was still busy after {waited_s:.1f} s (the numbers include other work)"
    return f"the lattice was quiet after {waited_s:.1f} s"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- perf ---------------------------------------------------------------------------------

@dataclass
class PerfRun:
    proc: subprocess.Popen | None
    data: Path
    log: Path
    pids: list[int]
    failure: str | None = None


def _perf_start(host_pids: list[int], workdir: Path, scenario: str) -> PerfRun:
    data, log_path = workdir / f"{scenario}.perf.data", workdir / f"{scenario}.perf.log"
    run = PerfRun(None, data, log_path, host_pids)
    if not host_pids:
        run.failure = "no host runs"
        return run
    if not os.access(PERF, os.X_OK):
        run.failure = f"{PERF} is not installed (Debian: linux-perf)"
        return run
    argv = [PERF, "record", "--no-buildid-cache", "-F", str(PERF_HZ), "-g",
            "-p", ",".join(map(str, host_pids)), "-o", str(data)]
    with open(log_path, "wb") as log_file:
        run.proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    # perf attaches within a few hundred ms, or exits at once (permissions, paranoid level).
    deadline = time.perf_counter() + 1.0
    while time.perf_counter() < deadline and run.proc.poll() is None:
        time.sleep(0.05)
    if run.proc.poll() is not None:
        run.failure = _perf_failure(run, f"perf record exited with {run.proc.returncode}")
        run.proc = None
    return run


def _perf_failure(run: PerfRun, what: str) -> str:
    text = run.log.read_text(errors="replace").strip() if run.log.exists() else ""
    lines = [l for l in text.splitlines() if l.strip()][-6:]
    paranoid = Path("/proc/sys/kernel/perf_event_paranoid")
    hint = ""
    if paranoid.exists() and re.search(r"ermission|paranoid|EACCES|EPERM", text):
        hint = f" (kernel.perf_event_paranoid = {paranoid.read_text().strip()}, uid {os.getuid()})"
    return f"{what}{hint}" + ("\n\n    " + "\n    ".join(lines) if lines else "")


def _perf_stop(run: PerfRun) -> None:
    if run.proc is None:
        return
    run.proc.send_signal(signal.SIGINT)
    try:
        run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
        run.failure = "perf record did not stop within 60 s after SIGINT"
        return
    if run.proc.returncode not in (0, -signal.SIGINT) or not run.data.exists():
        run.failure = _perf_failure(run, f"perf record exited with {run.proc.returncode}")


def _symfs_for_deleted(exe_link: str, pid: int, root: Path) -> bool:
    """A host rebuilt since it started runs a deleted binary, whose symbols perf cannot
    read. Builds, under `root`, a mirror of / (symlinks) holding a copy of the running
    binary (from /proc/<pid>/exe) at its old path, for `perf report --symfs`."""
    if not exe_link.endswith(" (deleted)"):
        return False
    parts = Path(exe_link.removesuffix(" (deleted)")).parts[1:]
    src, dst = Path("/"), root
    dst.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        for entry in os.listdir(src):
            if entry != part:
                (dst / entry).symlink_to(src / entry)
        if i == len(parts) - 1:
            shutil.copyfile(f"/proc/{pid}/exe", dst / part)
            (dst / f"{part} (deleted)").symlink_to(part)
        else:
            (dst / part).mkdir()
        src, dst = src / part, dst / part
    return True


def _crate(symbol: str) -> str:
    """The crate a (demangled Rust) symbol belongs to, e.g. `<tokio::x::Y as core::F>::poll`
    → tokio; crate families (wasmtime_environ, tracing_subscriber, ...) merged."""
    s = symbol
    for _ in range(3):
        s = s.lstrip("<&* ").removeprefix("impl ").removeprefix("mut ").removeprefix("dyn ")
    if s.startswith("(") or re.match(r"[A-Z_][A-Za-z0-9_]{0,3}(<[^>]*>)? as ", s):
        # A generic or a tuple implementing a trait, e.g. `<F as core::future::IntoFuture>`:
        # the trait's crate.
        s = s.split(" as ", 1)[1] if " as " in s else s
        s = s.lstrip("<&* ").removeprefix("dyn ")
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if not match:
        return "other (C or unnamed)"
    crate = match.group(1)
    for family in ("wasmtime", "cranelift", "wasmcloud", "wasmparser", "wasm_encoder", "wit", "tokio",
                   "hyper", "tracing", "serde", "async_nats", "opentelemetry", "rustls", "futures"):
        if crate.startswith(family):
            return family
    return crate


def _where(dso: str, symbol: str, host_dsos: set[str]) -> str:
    if dso.startswith("[kernel") or symbol.startswith("[k]"):
        return "kernel"
    if dso.startswith("[JIT]") or dso.startswith("perf-"):
        return "wasm code (wasmtime JIT)"
    name = symbol.removeprefix("[.] ").strip()
    if dso in host_dsos:
        return "host: unresolved" if name.startswith("0x") else f"host: {_crate(name)}"
    return dso.split(".so")[0] if ".so" in dso else dso


def _table(rows: list[tuple[str, float]], head: str, limit: int) -> None:
    print(f"\n| {head} | share of samples |\n|---|---:|")
    for name, share in rows[:limit]:
        print(f"| {name} | {share:.1f} % |")
    rest = sum(share for _, share in rows[limit:])
    if rest:
        print(f"| ({len(rows) - limit} more) | {rest:.1f} % |")


def _perf_report(run: PerfRun, workdir: Path, scenario: str) -> None:
    exes = {}
    for pid in run.pids:
        try:
            exes[pid] = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            pass
    host_dsos = {os.path.basename(e) for e in exes.values()} | {os.path.basename(e.removesuffix(" (deleted)"))
                                                                for e in exes.values()}
    argv = [PERF, "report", "--stdio", "--no-children", "-g", "none", "-n", "--sort", "dso,sym", "-t", "\t",
            "-i", str(run.data)]
    note = ""
    deleted = next(((pid, e) for pid, e in exes.items() if e.endswith(" (deleted)")), None)
    if deleted:
        symfs = workdir / f"{scenario}.symfs"
        try:
            _symfs_for_deleted(deleted[1], deleted[0], symfs)
            argv += ["--symfs", str(symfs), "--kallsyms", "/proc/kallsyms"]
            note = f"; the host runs a deleted (since rebuilt) binary, symbols read from /proc/{deleted[0]}/exe"
        except OSError as e:
            note = f"; the host runs a deleted binary and its copy failed ({e}): its symbols are unresolved"
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    rows, samples, event = [], 0, "?"
    for line in out.stdout.splitlines():
        if line.startswith("# Samples:") and " of event " in line:  # "# Samples: 1K of event 'cpu-clock:ppp'"
            event = line.split(" of event ", 1)[1].strip().strip("'")
        if line.startswith("#") or not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]  # overhead, samples, dso, symbol
        if len(fields) >= 4 and fields[0].endswith("%") and fields[1].isdigit():
            rows.append((float(fields[0].rstrip("%")), fields[2], fields[3]))
            samples += int(fields[1])
    if out.returncode != 0 or not rows:
        print(f"\nperf report gave nothing (exit {out.returncode}): "
              f"{(out.stderr or out.stdout).strip().splitlines()[-1:] or ['no samples']}")
        return

    def grouped(key) -> list[tuple]:
        totals: dict = {}
        for share, dso, sym in rows:
            totals[key(dso, sym)] = totals.get(key(dso, sym), 0.0) + share
        return sorted(totals.items(), key=lambda kv: -kv[1])

    hosts = ", ".join(f"pid {p}" for p in run.pids)
    print(f"\nperf of the host ({hosts}, {exes.get(run.pids[0], '?')}): {samples} samples of {event} at {PERF_HZ} Hz, "
          f"self time{note}.")
    _table(grouped(lambda dso, sym: dso), "shared object", 10)
    _table(grouped(lambda dso, sym: _where(dso, sym, host_dsos)), "where (crate of the symbol)", 20)
    print(f"\n| share | shared object | symbol (top {TOP_SYMBOLS}) |\n|---:|---|---|")
    def symbol(dso: str, sym: str) -> tuple[str, str]:  # one row per name; unnamed addresses in one
        return (dso, "[.] (unnamed addresses)") if sym.removeprefix("[.] ").startswith("0x") else (dso, sym)

    for (dso, sym), share in grouped(symbol)[:TOP_SYMBOLS]:
        name = sym.removeprefix("[.] ").removeprefix("[k] ").replace("|", "\\|")
        print(f"| {share:.2f} % | {dso} | `{name[:140]}` |")


# --- the command ------------------------------------------------------------------------------

def _scenarios(names: list[str], cookie: str, ticket_id: str) -> list[tuple[str, Scenario]]:
    every = [
        Scenario("currentuser", "GET /api/users/currentuser", "GET", "/api/users/currentuser"),
        Scenario("create", "POST /api/tickets", "POST", "/api/tickets", body={"title": "profile", "price": 10}, cookie=cookie),
        Scenario("list", "GET /api/tickets (first page)", "GET", "/api/tickets"),
        Scenario("show", "GET /api/tickets/:id", "GET", f"/api/tickets/{ticket_id}"),
    ]
    by_key = {scenario.key: scenario for scenario in every}
    return [(n, by_key[n]) for n in names]


def _host_binary(profile: Profile) -> str:
    described = []
    for name in host_names(profile):
        pid = procs.running(profile, name)
        if pid:
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            cargo_profile = Path(exe.removesuffix(" (deleted)")).parent.name
            kind = " (unoptimised: not the speed of a release)" if cargo_profile == "debug" else ""
            described.append(f"{name} runs {exe}, cargo profile {cargo_profile}{kind}")
    return "; ".join(described) or "no host runs"


def _nats_messages(profile: Profile) -> int | None:
    """Messages NATS has received so far (`in_msgs` of its monitoring endpoint): every
    wRPC call, reply, event and heartbeat is one or more. None if it cannot be read."""
    import json
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{profile.ports['nats_monitor']}/varz", timeout=2) as reply:
            return int(json.load(reply)["in_msgs"])
    except (OSError, KeyError, ValueError):
        return None


def _cpu_table(labels: dict[int, str], before: dict[int, int], after: dict[int, int], wrk_s: float,
               result: Result, wall_s: float, messages: int | None = None) -> None:
    per_label: dict[str, float] = {}
    for pid, label in labels.items():
        if pid in before and pid in after:
            per_label[label] = per_label.get(label, 0.0) + (after[pid] - before[pid]) / CLK_TCK
    gone = sorted({labels[p] for p in before if p not in after})
    lattice_s = sum(per_label.values())
    total_s = lattice_s + wrk_s
    requests = max(result.requests, 1)

    def row(name: str, seconds: float) -> str:
        share = seconds / total_s * 100 if total_s else 0.0
        return f"| {name} | {seconds * 1000 / requests:.3f} | {share:.1f} % |"

    print("| process | CPU ms per request | share of the total |\n|---|---:|---:|")
    shown = sorted(((n, s) for n, s in per_label.items() if total_s and s / total_s >= OMIT_SHARE),
                   key=lambda ns: -ns[1])
    for name, seconds in shown:
        print(row(name, seconds))
    print(row("**lattice**", lattice_s))
    print(row("wrk (load generator)", wrk_s))
    print(row("**total**", total_s))
    omitted = len(per_label) - len(shown)
    print(f"\n{result.rate:.1f} req/s ({result.requests} requests in {result.seconds:.1f} s), "
          f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, non-2xx/3xx {result.status_errors}, "
          f"socket errors {socket_errors_text(result.socket_errors)}; "
          f"busy cores {total_s / wall_s:.2f} of {os.cpu_count()} over {wall_s:.1f} s"
          + (f"; {omitted} processes at ~0 left out" if omitted else "")
          + (f"; exited during the run, not counted: {', '.join(gone)}" if gone else "") + ".")
    if messages is not None:
        print(f"NATS messages per request: {messages / requests:.1f} (wRPC calls to providers and "
              "between components, their replies, events; idle traffic included).")


def profile_cpu(profile: Profile, base: str, names: list[str], seconds: float, concurrency: int,
                perf: bool = False) -> None:
    """Prints, per scenario in `names`, the CPU per request of each process of `profile`'s
    lattice serving `base` (and the perf tables of its hosts when `perf`)."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"no scenario {', '.join(unknown)}; there are {', '.join(SCENARIOS)}")
    ensure_wrk()
    base = base.rstrip("/")
    run_seconds = max(1, round(seconds))
    run_token = uuid.uuid4().hex[:8]
    try:
        cookie = session_cookie(base, f"profile-{run_token}@test.com")
    except OSError as e:
        raise SystemExit(f"{base} does not answer: {e}")
    ticket = post_json(base, "/api/tickets", {"title": "profile", "price": 10}, cookie)
    if "id" not in ticket:
        raise SystemExit(f"POST /api/tickets answered {ticket['status']}")

    now = datetime.datetime.now().astimezone()
    load = os.getloadavg()
    print(f"\n## ticketing profile, {now:%Y-%m-%d %H:%M %Z}\n")
    print(f"- target {base} ({profile.name} lattice), git {git_revision()}")
    print(f"- load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs")
    print(f"- {_host_binary(profile)}")
    print(f"- {wrk_version()}, {run_seconds} s per scenario, {concurrency} connections; CPU from /proc/<pid>/stat "
          f"(ticks of {1000 // CLK_TCK} ms)")
    print("- the machine must be quiet for these numbers to mean anything (no tests, builds or other load)",
          flush=True)

    with tempfile.TemporaryDirectory(prefix="ticketing-profile-") as tmp:
        workdir = Path(tmp)
        for key, scenario in _scenarios(names, cookie, ticket["id"]):
            seeded = ""
            if key == "list":
                seeded = f" ({seed_tickets(base, cookie, LISTED_TICKETS)})"
            labels = lattice_processes(profile)
            if not labels:
                raise SystemExit(f"no process of the {profile.name} lattice runs")
            waited = wait_quiet(labels)
            host_pids = [p for n in host_names(profile) if (p := procs.running(profile, n))]
            started = time.perf_counter()
            before = _snapshot(labels)
            messages_before = _nats_messages(profile)
            perf_run = _perf_start(host_pids, workdir, key) if perf else None
            try:
                children_before = _children_cpu_s()
                result = run_wrk(base, scenario, run_seconds, concurrency, workdir, run_token)
                wrk_s = _children_cpu_s() - children_before  # perf is still running: not reaped yet
                settled = wait_quiet(labels)
                after = _snapshot(labels)
                messages_after = _nats_messages(profile)
                wall_s = time.perf_counter() - started
            finally:  # never leave perf recording, whatever stopped the run
                if perf_run:
                    _perf_stop(perf_run)

            print(f"\n### {key}: {scenario.method} {scenario.path}{seeded}\n")
            print(f"Before the run, {_quiet(waited)}; after wrk stopped, counted until {_quiet(settled)}.\n")
            messages = None if None in (messages_before, messages_after) else messages_after - messages_before
            _cpu_table(labels, before, after, wrk_s, result, wall_s, messages)
            if perf_run:
                if perf_run.failure:
                    print(f"\nperf: {perf_run.failure}\n(continuing without it)")
                else:
                    _perf_report(perf_run, workdir, key)
            print(flush=True)
    print(f"Load average (1 min) after the runs: {os.getloadavg()[0]:.2f}.")
