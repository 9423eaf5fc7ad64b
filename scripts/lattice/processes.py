"""The processes of a profile's lattice: what each one runs, and starting them.

One place says how each process is started (`command`), so that `up` and the
supervisor that restarts a crashed one start it the same way.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import machines, postgres, procs, registry, secret_store, traces
from .build import binary
from .install import wash_path
from .settings import ROOT, TOOLS_BIN, Profile


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None
    port: int | None = field(default=None)  # a server is up once this port accepts
    address: str | None = None  # ... on this address (the profile's `address` when None)


def host_names(profile: Profile) -> list[str]:
    return [f"host-{i}" for i in range(1, profile.hosts + 1)]


# The secrets backend last: it is a NATS client, started once NATS listens.
SERVERS = ["nats", "ferretdb", "redis", "stripe-mock", "registry", "secrets"]


def machine_nats_names(profile: Profile) -> list[str]:
    """The NATS server of each machine (machines.py), clustered with the central one."""
    return [f"nats-m{i}" for i in range(1, profile.machines + 1)]


def server_names(profile: Profile) -> list[str]:
    """The servers of the profile: SERVERS, each machine's NATS, PostgreSQL under FerretDB
    when it stores there, and the trace backend when traces are on."""
    return [SERVERS[0], *machine_nats_names(profile), *(["postgres"] if profile.store == "postgres" else []),
            *SERVERS[1:], *(["traces"] if profile.traces else [])]


def process_names(profile: Profile) -> list[str]:
    """Everything a profile runs, in start order."""
    return [*server_names(profile), *host_names(profile), "wadm"]


def running_names(profile: Profile) -> list[str]:
    """Every process that may run for the profile: process_names, then unlisted_names."""
    return [*process_names(profile), *unlisted_names(profile)]


def unlisted_names(profile: Profile) -> list[str]:
    """Processes with a pid file that process_names does not list: servers an `up` with
    other options started (`--store postgres`, `--traces`), which `down` must stop too."""
    listed = {*process_names(profile), SUPERVISOR}
    return sorted(p.stem for p in profile.pid_dir.glob("*.pid") if p.stem not in listed)


def command(profile: Profile, name: str) -> Command:
    """How process `name` of the profile is started."""
    p = profile.ports
    data = profile.data_dir
    address = profile.address
    if name == "nats":
        argv = _nats_argv(profile, "nats", address)
        if profile.machines:
            argv += machines.cluster_args(profile, address)
        return Command(argv, port=p["nats"], env=_go_server_env())
    if name in machine_nats_names(profile):
        index = int(name.removeprefix("nats-m"))
        own = profile.machine_address(index)
        argv = _nats_argv(profile, name, own) + machines.cluster_args(profile, own)
        return Command(machines.on_machine(index, argv), port=p["nats"], address=own, env=_go_server_env())
    if name == "ferretdb":
        on_postgres = profile.store == "postgres"
        store = ["--postgresql-url", postgres.url(profile)] if on_postgres else []
        return Command([str(TOOLS_BIN / "ferretdb"), "--listen-addr", f"{address}:{p['ferretdb']}",
                        "--data-dir", str(data / "ferretdb"), *store], port=p["ferretdb"],
                       env={**_go_server_env(), **(postgres.password_env(profile) if on_postgres else {})})
    if name == "postgres":
        return Command(postgres.argv(profile), port=p["postgres"], address=postgres.ADDRESS)
    if name == "redis":
        # Append-only file on, so scheduled jobs survive a Redis restart.
        return Command([shutil.which("redis-server") or "redis-server", "--bind", address,
                        "--port", str(p["redis"]), "--dir", str(data / "redis"),
                        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                        "--daemonize", "no"], port=p["redis"])
    if name == "stripe-mock":
        # stripe-mock serves HTTPS too; on the next port, so two profiles never collide.
        return Command([str(TOOLS_BIN / "stripe-mock"), "-http-addr", f"{address}:{p['stripe_mock']}",
                        "-https-addr", f"{address}:{p['stripe_mock'] + 1}"], port=p["stripe_mock"])
    if name == "registry":
        # The OCI registry the hosts load artifacts from (see registry.py), on disk.
        return Command([str(TOOLS_BIN / "registry"), "serve", str(registry.config(profile))],
                       env=dict(os.environ, OTEL_TRACES_EXPORTER="none"), port=p["registry"])
    if name == "secrets":
        # wasmCloud's secrets backend (see secret_store.py); its keys come in its environment.
        return Command(secret_store.backend_argv(profile), env=secret_store.backend_env(profile))
    if name == "traces":
        # The trace backend and its UI (see traces.py).
        (data / "phoenix").mkdir(parents=True, exist_ok=True)
        return Command(traces.backend_argv(), env=traces.backend_env(profile), port=p["traces"])
    if name == "wadm":
        return Command([str(binary("wadm")), "--nats-server", f"{address}:{p['nats']}"])
    if name in host_names(profile):
        return _host_command(profile, name)
    raise ValueError(f"no process {name!r} in the {profile.name} profile")


def _go_server_env() -> dict[str, str]:
    """The environment of NATS and FerretDB: one Go scheduler thread each. They share the
    machine's few cores with the hosts and providers, and with a thread per core their
    schedulers spent much of their CPU waking threads to hand goroutines over (perf:
    `finish_task_switch`, `sysmon`). Measured with `./ticketing profile create` at c=8
    (2026-11-27, 2 cores): FerretDB 2.05 -> 1.52 ms and NATS 1.25 -> 0.98 ms of CPU per
    ticket created, 500 -> 635 creates/s."""
    return dict(os.environ, GOMAXPROCS="1")


def _nats_argv(profile: Profile, name: str, address: str) -> list[str]:
    """A NATS server with JetStream, its data in `name` under the profile's data dir."""
    server_name = f"ticketing-{profile.name}" + ("" if name == "nats" else f"-{name.removeprefix('nats-')}")
    return [str(TOOLS_BIN / "nats-server"), "-js", "-a", address, "-p", str(profile.ports["nats"]),
            "-sd", str(profile.data_dir / name), "-n", server_name, "-m", str(profile.ports["nats_monitor"])]


def host_seed(profile: Profile, name: str) -> str:
    """The host's server key seed, made once per host and kept (mode 600) in the state
    dir, so that a restarted host keeps its id."""
    path = profile.state_dir / "keys" / f"{name}.seed"
    if not path.exists():
        made = subprocess.run([wash_path(), "keys", "gen", "server", "--output", "json"],
                              capture_output=True, text=True, check=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.loads(made.stdout)["seed"])
    return path.read_text().strip()


def _host_command(profile: Profile, name: str) -> Command:
    index = name.removeprefix("host-")
    env = dict(os.environ)
    env.update(
        WASMCLOUD_HOST_SEED=host_seed(profile, name),
        WASMCLOUD_LATTICE=profile.lattice,
        # The lattice's NATS: on a machine of its own, that machine's NATS server.
        WASMCLOUD_NATS_HOST=profile.machine_address(int(index)) if profile.machines else profile.address,
        WASMCLOUD_NATS_PORT=str(profile.ports["nats"]),
        # Artifacts come from the lattice's registry, over plain HTTP;
        # `file://` images only when wash.toml allows them (`allow_file_load`).
        WASMCLOUD_OCI_ALLOWED_INSECURE=registry.address(profile),
        WASMCLOUD_ALLOW_FILE_LOAD=str(profile.allow_file_load).lower(),
        # Where the host asks for the secrets wadm.yaml gives a component or provider.
        WASMCLOUD_SECRETS_TOPIC=secret_store.TOPIC,
        WASMCLOUD_RPC_TIMEOUT_MS=str(profile.rpc_timeout_ms),
        WASMCLOUD_MAX_EXECUTION_TIME_MS=str(profile.max_execution_ms),
        # The web component's outgoing HTTP (wadm.yaml: wasmcloud+builtin://http-client).
        WASMCLOUD_EXPERIMENTAL_FEATURES="builtin-http-server,builtin-http-client",
        WASMCLOUD_LABEL_ticketing_host=index,
        # glibc gives each thread that allocates at once an arena of its own and keeps
        # what was freed in it: compiling the components at start on several threads left
        # four arenas holding about 100 MiB of an idle host's 160. Two arenas serve two
        # cores.
        MALLOC_ARENA_MAX="2",
        # A temporary directory of its own: the host caches fetched images and provider
        # binaries there (`wasmcloud_ocicache`, `wasmcloudcache`) and rewrites a cached
        # file in place, so two hosts fetching a new image at once (every hot swap) could
        # read the file while the other truncated it ("failed to extract module claims:
        # unexpected end-of-file", and the old instance stopped with nothing new to run).
        TMPDIR=str(_private_tmp(profile, name)),
    )
    env.update(traces.host_env(profile))
    argv = [str(binary("wasmcloud-host"))]
    if profile.machines:
        argv = machines.on_machine(int(index), argv)
    return Command(argv, env=env, cwd=ROOT)


def _private_tmp(profile: Profile, name: str) -> Path:
    """The temporary directory of process `name`, made if missing."""
    path = profile.data_dir / name / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


SUPERVISOR = "supervisor"


def start_supervisor(profile: Profile) -> None:
    """Starts the supervisor that restarts a crashed process (see supervise.py)."""
    procs.start(profile, SUPERVISOR, [sys.executable, "-u", str(ROOT / "ticketing"), "supervise",
                                      "--profile", profile.name], cwd=ROOT)


def start(profile: Profile, name: str) -> int:
    """Starts process `name` unless it runs; returns its pid."""
    cmd = command(profile, name)
    return procs.start(profile, name, cmd.argv, env=cmd.env, cwd=cmd.cwd)


def start_servers(profile: Profile) -> None:
    for sub in ("nats", *machine_nats_names(profile), "ferretdb", "redis", "registry"):
        (profile.data_dir / sub).mkdir(parents=True, exist_ok=True)
    if profile.store == "postgres":
        # Taking connections before FerretDB, its client, starts.
        postgres.prepare(profile)
        start(profile, "postgres")
        postgres.wait_until_ready(profile)
    servers = [name for name in server_names(profile) if name != "postgres"]
    listening = [name for name in servers if command(profile, name).port]
    for name in listening:
        start(profile, name)
    for name in listening:
        cmd = command(profile, name)
        procs.wait_for_port(profile, name, cmd.port, address=cmd.address)
    if profile.machines:
        machines.wait_for_jetstream(profile)
    for name in servers:
        start(profile, name)  # the rest: clients of the servers above


def start_hosts(profile: Profile) -> None:
    for name in host_names(profile):
        start(profile, name)


def start_wadm(profile: Profile) -> None:
    start(profile, "wadm")


def provider_pids(profile: Profile, name: str) -> list[int]:
    """The processes of provider `name` (as its archive is named, e.g. `keyvalue_mongo`)
    that the profile's hosts run: their children."""
    pids = []
    for host in host_names(profile):
        pid = procs.running(profile, host)
        if pid:
            found = subprocess.run(["pgrep", "-P", str(pid), "-f", name], capture_output=True, text=True)
            pids += [int(p) for p in found.stdout.split()]
    return pids
