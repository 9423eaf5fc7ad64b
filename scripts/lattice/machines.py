"""A lattice spread over several "machines" on one computer: each machine is a Linux
network namespace with an address of its own, so its host shares no network stack, no
loopback and no path to the servers with the others, and reaches everything over the
network as a host on another computer would.

Layout (profile `machines` in wash.toml; `up` makes it, `down` removes it; needs root):
- a bridge holding the profile's `address`, on which the central servers listen: NATS,
  FerretDB, Redis, stripe-mock, the OCI registry (and, as NATS clients, wadm and the
  secrets backend);
- machine i: namespace `ticketing-m<i>` on the bridge with `machine_address(i)`, running
  a NATS server of its own and one wasmCloud host connected to it. The machines' NATS
  servers and the central one form one NATS cluster (routes on port `nats_cluster`), each
  with JetStream, so the cluster's JetStream spans the machines and streams live on any
  of them. The host pulls its artifacts from the registry over the bridge, the way a host
  is added on a new machine (README, "More than one machine"); its providers reach NATS
  through the machine's server and the other servers over the bridge.

(A NATS leaf node per machine was tried first: a leaf without JetStream does not pass
`$JS.API` on to the hub's JetStream unless both sides use JetStream domains and a shared
system account, and our providers speak plain `$JS.API`. JetStream on the central server
alone does not work in a cluster either: its meta group never elects a leader.)
"""
from __future__ import annotations

import subprocess
import time

from .nats import Nats
from .settings import Profile

BRIDGE = "ticketing-br0"


def namespace(index: int) -> str:
    return f"ticketing-m{index}"


def _veth(index: int) -> str:
    """This side of machine `index`'s veth pair (the machine's side is its `eth0`)."""
    return f"ticketing-v{index}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"ip {' '.join(args)} failed: {done.stderr.strip()}\n"
                         "The machines profile makes network namespaces: run it as root.")
    return done


def create(profile: Profile) -> None:
    """The bridge and one namespace per machine (what exists already is kept)."""
    if not profile.machines:
        return
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{profile.address}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
    existing = _ip("netns", "list").stdout.split()
    for index in range(1, profile.machines + 1):
        name = namespace(index)
        if name in existing:
            continue
        veth = _veth(index)
        _ip("link", "del", veth, check=False)  # left by a namespace the kernel still tears down
        _ip("netns", "add", name)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", veth, "master", BRIDGE, "up")
        _ip("-n", name, "addr", "add", f"{profile.machine_address(index)}/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")


def remove(profile: Profile) -> None:
    """Deletes the namespaces (with their ends of the veth pairs) and the bridge."""
    if not profile.machines:
        return
    for index in range(1, profile.machines + 1):
        _ip("link", "del", _veth(index), check=False)
        _ip("netns", "del", namespace(index), check=False)
    _ip("link", "del", BRIDGE, check=False)


def on_machine(index: int, argv: list[str]) -> list[str]:
    """`argv` run inside machine `index`."""
    return ["ip", "netns", "exec", namespace(index), *argv]


def cluster_args(profile: Profile, address: str) -> list[str]:
    """nats-server flags joining the server listening on `address` to the profile's
    cluster: the central server and every machine's, each a seed route of the others."""
    port = profile.ports["nats_cluster"]
    everyone = [profile.address] + [profile.machine_address(i) for i in range(1, profile.machines + 1)]
    routes = ",".join(f"nats://{a}:{port}" for a in everyone if a != address)
    return ["--cluster_name", f"ticketing-{profile.name}", "--cluster", f"nats://{address}:{port}", "--routes", routes]


def wait_for_jetstream(profile: Profile, timeout: float = 60.0) -> None:
    """Until the cluster's JetStream answers (its servers have elected a meta leader):
    before that, every JetStream request of wadm, the hosts and the providers fails."""
    deadline = time.time() + timeout
    answer = b""
    while time.time() < deadline:
        try:
            client = Nats(profile.ports["nats"], profile.address)
            try:
                answer = client.request("$JS.API.INFO")
            finally:
                client.close()
            if b'"error"' not in answer:
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the NATS cluster's JetStream did not come up within {timeout:.0f}s ({answer[:200]!r}); "
                     f"see the nats*.log files in {profile.log_dir}")
