"""Where things live and which ports a profile uses, read from wash.toml."""
from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TICKETING_CACHE", Path.home() / ".cache" / "ticketing"))
TOOLS_BIN = CACHE / "tools" / "bin"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
BUILD_DIR = ROOT / "build"


@dataclass
class Profile:
    """One runnable lattice: the dev one that `up` starts, or the isolated test one."""

    name: str
    lattice: str
    hosts: int
    ports: dict[str, int]
    app: str
    manifest: Path
    health_path: str
    rpc_timeout_ms: int
    max_execution_ms: int
    allow_file_load: bool = False
    # Where this lattice's servers listen (NATS, FerretDB, Redis, stripe-mock, registry).
    address: str = "127.0.0.1"
    # 0: every host on this machine. N: N "machines" (network namespaces made by `up`,
    # see machines.py), one host each, joined to the lattice through NATS on `address`.
    machines: int = 0
    # OpenTelemetry: hosts and providers export traces to a backend the profile runs.
    traces: bool = False
    # Where FerretDB keeps the documents: "sqlite" (files in the data dir) or "postgres"
    # (a PostgreSQL server the profile runs, see postgres.py). `up --store` records its
    # choice in the state dir, and it holds until another `up --store` or `clean`.
    store: str = "sqlite"

    @property
    def state_dir(self) -> Path:
        return ROOT / ".ticketing" / self.name

    @property
    def store_label(self) -> str:
        """Where the documents are, for people: "FerretDB on SQLite" or "... on PostgreSQL"."""
        return "FerretDB on " + ("PostgreSQL" if self.store == "postgres" else "SQLite")

    @property
    def store_file(self) -> Path:
        return self.state_dir / "store"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    def machine_address(self, index: int) -> str:
        """Machine `index`'s address (1-based), beside `address` on the same /24."""
        return f"{self.address.rsplit('.', 1)[0]}.{10 + index}"

    @property
    def traces_url(self) -> str:
        """The trace backend's OTLP receiver, UI and API (when the profile runs it)."""
        return f"http://{self.address}:{self.ports['traces']}"

    @property
    def http_url(self) -> str:
        front = self.machine_address(1) if self.machines else "127.0.0.1"
        return f"http://{front}:{self.ports['http']}"

    def wash_env(self) -> dict[str, str]:
        """Environment that points wash at this profile's lattice."""
        env = dict(os.environ)
        env.update(
            WASMCLOUD_CTL_HOST=self.address,
            WASMCLOUD_CTL_PORT=str(self.ports["nats"]),
            WASMCLOUD_RPC_HOST=self.address,
            WASMCLOUD_RPC_PORT=str(self.ports["nats"]),
            WASMCLOUD_LATTICE=self.lattice,
        )
        return env


def load_settings() -> dict:
    with open(ROOT / "wash.toml", "rb") as f:
        return tomllib.load(f)


def profile(name: str = "dev") -> Profile:
    settings = load_settings()
    lattice = settings["lattice"]
    profiles = settings["profiles"]
    dev_ports = dict(profiles["dev"]["ports"])
    chosen = profiles.get(name)
    if chosen is None:
        raise SystemExit(f"unknown profile {name!r}; wash.toml has {sorted(profiles)}")
    ports = {**dev_ports, **chosen.get("ports", {})}
    machines = int(chosen.get("machines", 0))
    return Profile(
        name=name,
        lattice=chosen.get("lattice", lattice["name"]),
        hosts=machines or int(chosen.get("hosts", lattice["hosts"])),
        ports=ports,
        app=lattice["app"],
        manifest=ROOT / lattice["manifest"],
        health_path=lattice["health_url"],
        rpc_timeout_ms=int(lattice["rpc_timeout_ms"]),
        max_execution_ms=int(lattice["max_execution_ms"]),
        allow_file_load=bool(chosen.get("allow_file_load", lattice.get("allow_file_load", False))),
        address=chosen.get("address", "127.0.0.1"),
        machines=machines,
        traces=os.environ.get("TICKETING_TRACES") == "1" or bool(chosen.get("traces", lattice.get("traces", False))),
        store=_store(os.environ.get("TICKETING_STORE") or _recorded_store(name)
                     or chosen.get("store", lattice.get("store", "sqlite"))),
    )


STORES = ("sqlite", "postgres")


def _recorded_store(profile_name: str) -> str | None:
    try:
        return (ROOT / ".ticketing" / profile_name / "store").read_text().strip()
    except FileNotFoundError:
        return None


def _store(name: str) -> str:
    if name not in STORES:
        raise SystemExit(f"unknown store {name!r}; FerretDB stores on one of {', '.join(STORES)}")
    return name


def versions() -> dict[str, str]:
    return load_settings()["versions"]


def git_revision() -> str:
    """The checkout's commit (`-dirty` when it has changes; `unknown` outside git)."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
