"""A lattice spread over several "machines" on one computer: each machine is a Linux
network namespace with an address of its own, so its host shares no network stack, no
loopback and no path to the servers with the others, and reaches everything over the
network as a host on another computer would.

Layout (profile `machines` in wash.toml; `up` makes it, `down` removes it; needs root):
- a bridge holding the profile's `address`, on which the central servers listen: NATS,
  FerretDB, Redis, stripe-mock, the OCI registry (and, as NATS clients, wadm and the
  secrets backend);
- machine i: namespace `ticketing-m<i>` on the bridge with `machine_address(i)`, running
  one wasmCloud host that joins the lattice through the central NATS over the bridge and
  pulls its artifacts from the registry there, the way a host is added on a new machine
  (README, "More than one machine"). Its providers reach the servers the same way.

(A NATS leaf node per machine was tried first: a leaf without JetStream does not pass
`$JS.API` on to the hub's JetStream unless both sides use JetStream domains and a shared
system account, and our providers speak plain `$JS.API`.)
"""
from __future__ import annotations

import subprocess

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
