"""Command line of ./ticketing."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from . import build, install, lattice, manifest, postgres, procs, traces
from .deploy import app_status
from .processes import process_names
from .procs import log
from .settings import ROOT, STORES, TARGET_DIR, profile


def cmd_install(args) -> int:
    install.ensure_all()
    return 0


def cmd_build(args) -> int:
    install.ensure_all()
    build.build_all()
    return 0


def cmd_up(args) -> int:
    started = time.time()
    if args.traces:
        os.environ["TICKETING_TRACES"] = "1"  # also for the supervisor `up` starts
    if args.store:
        running = profile(args.profile)
        if running.store != args.store and any(procs.running(running, name) for name in ("ferretdb", "supervisor")):
            print(f"the {running.name} lattice runs on {running.store}: ./ticketing down first, then "
                  f"./ticketing up --store {args.store} (each store keeps its own data)", file=sys.stderr)
            return 1
        os.environ["TICKETING_STORE"] = args.store  # likewise
    if args.config:
        os.environ["TICKETING_CONFIG"] = ";".join(args.config)
        manifest.config_overrides()  # refuse a malformed one before starting anything
    prof = profile(args.profile)
    install.ensure_all()
    if prof.traces:
        traces.ensure_backend()
    build.build_all()
    lattice.up(prof)
    traced = f"\n  traces      {prof.traces_url}   (Arize Phoenix: project default, Traces)" if prof.traces else ""
    print(f"""
Ticketing is up ({time.time() - started:.0f}s).
  site        {prof.http_url}
  store       {prof.store_label}
  try         curl {prof.http_url}{prof.health_path}
  logs        {prof.log_dir}
  wash        {install.wash_path()} app list   (lattice {prof.lattice!r}, NATS {prof.address}:{prof.ports['nats']}){traced}
  stop        ./ticketing down{'' if prof.name == 'dev' else ' --profile ' + prof.name}
""")
    return 0


def cmd_down(args) -> int:
    lattice.down(profile(args.profile))
    return 0


def cmd_status(args) -> int:
    return lattice.status(profile(args.profile))


def cmd_logs(args) -> int:
    prof = profile(args.profile)
    names = [args.name] if args.name else process_names(prof)
    for name in names:
        print(f"--- {name} ({prof.log_dir / (name + '.log')})")
        print(procs.log_tail(prof, name, args.lines))
    return 0


def cmd_test(args) -> int:
    """Unit and provider tests (cargo test; the keyvalue provider's against FerretDB on
    SQLite, then again on PostgreSQL), then the end-to-end suite on an isolated test lattice."""
    started = time.time()
    install.ensure_all()
    build.build_all()
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET_DIR))
    log("unit tests: cargo test")
    unit = subprocess.run(
        ["cargo", "test", "--workspace", "--profile", build.NATIVE_PROFILE],
        cwd=ROOT, env=env,
    )
    if unit.returncode != 0:
        return unit.returncode
    log("the keyvalue provider's store and outbox tests again, FerretDB on PostgreSQL")
    servers = profile("postgres")
    with postgres.server(servers) as server:
        on_postgres = subprocess.run(
            ["cargo", "test", "--profile", build.NATIVE_PROFILE, "-p", "keyvalue-mongo", "--test", "mongo_store", "--test", "outbox"],
            cwd=ROOT, env=dict(env, TICKETING_TEST_POSTGRES=server, TICKETING_TEST_PSQL=str(postgres.bin_dir() / "psql"),
                               **postgres.password_env(servers)),
        )
    if on_postgres.returncode != 0:
        return on_postgres.returncode
    install.ensure_test_tools()
    traces.ensure_backend()  # for tests/test_traces.py
    log("end-to-end tests: pytest tests/ (starts and stops its own lattice; browser tests in Chromium)")
    e2e = subprocess.run([sys.executable, "-m", "pytest", "-v", *(args.pytest_args or ["tests"])], cwd=ROOT)
    log(f"test command finished in {time.time() - started:.0f}s")
    return e2e.returncode


def cmd_bench(args) -> int:
    from .bench import bench

    prof = profile(args.profile)
    levels = [int(c) for c in args.concurrency.split(",")]
    only = args.only.split(",") if args.only else None
    if not args.url:
        if app_status(prof) != "deployed":
            print(f"the {prof.name} lattice is not up: run ./ticketing up first (or bench another with --url)", file=sys.stderr)
            return 1
        bench(prof, [prof.http_url], args.seconds, levels, listed=args.listed, only=only)
    else:
        # Any deployments; the local lattice's memory only when it runs.
        local_up = any(procs.running(prof, name) for name in process_names(prof))
        bench(prof, args.url, args.seconds, levels, memory=local_up, listed=args.listed, only=only)
    return 0


def cmd_profile(args) -> int:
    from .profile import SCENARIOS, profile_cpu

    prof = profile(args.profile)
    if app_status(prof) != "deployed":
        print(f"the {prof.name} lattice is not up: run ./ticketing up first", file=sys.stderr)
        return 1
    profile_cpu(prof, prof.http_url, args.scenarios or SCENARIOS, args.seconds, args.concurrency, perf=args.perf)
    return 0


def cmd_events(args) -> int:
    from . import events

    prof = profile(args.profile)
    if not procs.running(prof, "nats"):
        print(f"the {prof.name} lattice is not up: run ./ticketing up first", file=sys.stderr)
        return 1
    if args.action == "replay":
        if args.seq is None:
            print("which dead letter? ./ticketing events replay SEQ (./ticketing events lists them)", file=sys.stderr)
            return 2
        letter = events.replay(prof, args.seq)
        log(f"dead letter #{letter.seq} published again on {letter.subject}")
    else:
        print(events.report(prof))
    return 0


def cmd_drill(args) -> int:
    from .drill import drill

    prof = profile(args.profile)
    if app_status(prof) != "deployed":
        print(f"the {prof.name} lattice is not up: run ./ticketing up first", file=sys.stderr)
        return 1
    drill(prof, args.purchases)
    return 0


def cmd_supervise(args) -> int:
    from .supervise import supervise

    supervise(profile(args.profile))
    return 0


def cmd_clean(args) -> int:
    prof = profile(args.profile)
    lattice.down(prof)
    postgres.remove(prof)
    shutil.rmtree(prof.state_dir, ignore_errors=True)
    log(f"removed {prof.state_dir}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_text, profile_arg=True):
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if profile_arg:
            p.add_argument("--profile", default="dev", help="dev (default), test, machines, traced or postgres, see wash.toml")
        return p

    add("install", cmd_install, "install the tools the lattice needs", profile_arg=False)
    add("build", cmd_build, "build components, providers, host and wadm", profile_arg=False)
    up = add("up", cmd_up, "install, build, start the lattice and deploy wadm.yaml")
    up.add_argument("--traces", action="store_true",
                    help="also run a trace backend with a UI (Arize Phoenix) and export every host's and provider's spans to it (OpenTelemetry)")
    up.add_argument("--store", choices=STORES,
                    help="where FerretDB keeps the documents: sqlite (files, the default) or postgres "
                         "(a PostgreSQL server the lattice runs, Debian's package); each keeps its own data")
    up.add_argument("--config", action="append", metavar="NAME.KEY=VALUE",
                    help="deploy with this property of an inline config of wadm.yaml changed, "
                         "e.g. auth-limits.signups_per_address=100000 for a load test (repeatable)")
    add("down", cmd_down, "stop everything `up` started")
    add("status", cmd_status, "show what runs")
    logs = add("logs", cmd_logs, "show the end of the logs")
    logs.add_argument("name", nargs="?", help="one process, e.g. host-1")
    logs.add_argument("-n", "--lines", type=int, default=40)
    test = add("test", cmd_test, "run all tests", profile_arg=False)
    test.add_argument("pytest_args", nargs="*", help="arguments for pytest (default: tests)")
    bench = add("bench", cmd_bench, "load benchmark of the running lattice (prints tables)")
    bench.add_argument("--seconds", type=float, default=10.0, help="per row (whole seconds, for wrk)")
    bench.add_argument("--concurrency", default="8,32", help="comma-separated levels (wrk connections)")
    bench.add_argument("--listed", type=int, default=200, metavar="N",
                       help="tickets for sale during the rows, created first if fewer (100000: a large store)")
    bench.add_argument("--url", metavar="BASE", action="append",
                       help="base URL to load (default: the profile's, e.g. http://127.0.0.1:8000); "
                            "repeat it to load several side by side, each row against each in turn")
    bench.add_argument("--only", metavar="ROWS", help="comma-separated rows: landing, ticket-page, show, list, "
                                                        "create, currentuser, signin, signup (default: all)")
    prof_cmd = add("profile", cmd_profile, "CPU per request of each process of the running lattice (prints tables)")
    prof_cmd.add_argument("--seconds", type=float, default=10.0, help="per scenario (whole seconds, for wrk)")
    prof_cmd.add_argument("--concurrency", type=int, default=8, help="wrk connections")
    prof_cmd.add_argument("--perf", action="store_true", help="also sample the host(s) with perf record")
    prof_cmd.add_argument("scenarios", nargs="*", metavar="scenario",
                          help="currentuser, create, list, show (default: all four)")
    add("clean", cmd_clean, "stop and delete a profile's state (databases, logs)")
    events = add("events", cmd_events, "event consumers' lag and the dead letters; replay one")
    events.add_argument("action", nargs="?", choices=["show", "replay"], default="show")
    events.add_argument("seq", nargs="?", type=int, help="the dead letter to replay")
    drill = add("drill", cmd_drill, "inject faults while purchases run; prints recovery and lost orders")
    drill.add_argument("--purchases", type=int, default=20, help="purchases in flight per fault")
    add("supervise", cmd_supervise, "restart the lattice's processes when they die (`up` runs it)")

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except subprocess.CalledProcessError as e:
        print(f"error: {' '.join(map(str, e.cmd))} exited with {e.returncode}", file=sys.stderr)
        return e.returncode or 1
    except KeyboardInterrupt:
        return 130
